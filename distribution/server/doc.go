// Package server is wharf's OCI registry: every endpoint of distribution-spec 1.1 (spec.md:
// pull, push — monolithic, chunked and streamed —, cross-repository and anonymous mounts,
// content discovery with tags and _catalog pagination, the referrers API, deletes) over one
// global content store (content/local) with per-repository links.
//
// On disk, under the root:
//
//	blobs/<alg>/<hex>                          the global CAS (an OCI image-layout blob tree)
//	uploads/                                   upload sessions: content/local ingests named <name>@<id>
//	repositories/<name>/_blobs/<alg>/<hex>     hard link to the CAS blob: the blob is in <name>
//	repositories/<name>/_manifests/<alg>/<hex> the manifest's media type (its bytes are in the CAS)
//	repositories/<name>/_tags/<tag>            the digest the tag points at
//	repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  a referrer's descriptor (JSON)
//
// Every file appears by an atomic rename or link, after the content it names is durable, so a
// kill -9 at any moment leaves nothing half-written visible; uploads keep their hash state
// (content/local) and resume after a restart. Lookups are a few file operations whatever the
// number of tags or manifests, and there is no global lock.
package server
