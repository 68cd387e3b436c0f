// Package client is the registry client of distribution-spec 1.1: a Repository is a
// content.Target (with content.Deleter, content.ReferrerLister and content.Mounter) over the
// HTTP API, so that image/copy moves images between registries, layouts and archives with
// one algorithm.
//
// What it implements, by section of the spec:
//   - Pulling: manifests by tag or digest (GET/HEAD with every OCI and Docker media type in
//     Accept), blobs by digest, resumed with a Range request when a connection drops;
//   - Pushing: blob uploads, monolithic (POST then PUT ?digest=) or chunked (PATCH with
//     Content-Range, then PUT), after a HEAD shows the blob is missing; the content is hashed
//     as it is sent and the final bytes are held back until size and digest are checked, so
//     the registry never commits a blob that does not match its descriptor; cross-repository
//     mount (POST ?mount=&from=, and anonymous mount); manifests by digest and by tag;
//   - Content discovery: tags (n, last and Link pagination), the referrers API with the
//     fallback tag schema sha256-<hex> for registries without it, and the catalog;
//   - Content management: DELETE of manifests and blobs.
//
// Error bodies are decoded with distribution/errcode, the package the server writes them
// with, so that errors.Is(err, errdef.ErrNotFound) works the same on both sides. Requests are
// retried with exponential backoff on 5xx, 429 and connection resets.
//
// Authentication follows the challenge a registry sends (WWW-Authenticate): anonymous, Basic,
// or the Bearer token flow (realm, service, scope; one token cached per scope), with
// credentials from docker's config.json, $REGISTRY_AUTH_FILE, containers' auth.json and
// docker-credential-* helpers (see Credentials). Credentials are sent only to the registry
// host itself: never to redirect targets on other hosts or to a foreign layer's urls.
package client
