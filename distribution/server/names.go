package server

import (
	"strings"
)

// Repository names and tags are checked with distribution/reference (ValidateRepository,
// ValidateTag): one grammar for the client, the CLI and the server.

// validUploadID reports whether id is one of ours: 32 lowercase hex characters.
func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !(id[i] >= '0' && id[i] <= '9' || id[i] >= 'a' && id[i] <= 'f') {
			return false
		}
	}
	return true
}

type routeKind int

const (
	routeNone routeKind = iota
	routeBase
	routeCatalog
	routeBlob
	routeUploads // POST .../blobs/uploads/
	routeUpload  // .../blobs/uploads/<id>
	routeManifest
	routeTags
	routeReferrers
)

type route struct {
	kind routeKind
	name string
	ref  string // digest, tag or upload id
}

// parseRoute splits a /v2/ path into its route. The repository name is not validated here.
func parseRoute(path string) route {
	p, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routeBase}
		}
		return route{}
	}
	if p == "" {
		return route{kind: routeBase}
	}
	if p == "_catalog" {
		return route{kind: routeCatalog}
	}
	segs := strings.Split(p, "/")
	n := len(segs)
	join := func(k int) string { return strings.Join(segs[:k], "/") }
	switch {
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return route{kind: routeUploads, name: join(n - 3)}
		}
		return route{kind: routeUpload, name: join(n - 3), ref: segs[n-1]}
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return route{kind: routeUploads, name: join(n - 2)}
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return route{kind: routeTags, name: join(n - 2)}
	case n >= 3 && segs[n-2] == "blobs":
		return route{kind: routeBlob, name: join(n - 2), ref: segs[n-1]}
	case n >= 3 && segs[n-2] == "manifests":
		return route{kind: routeManifest, name: join(n - 2), ref: segs[n-1]}
	case n >= 3 && segs[n-2] == "referrers":
		return route{kind: routeReferrers, name: join(n - 2), ref: segs[n-1]}
	}
	return route{}
}
