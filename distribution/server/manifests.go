package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// parseReference classifies a manifest reference: a digest (validated) or a tag (validated).
func (g *Registry) parseReference(w http.ResponseWriter, ref string) (isDigest bool, ok bool) {
	if strings.Contains(ref, ":") {
		if _, ok := g.parseDigest(w, ref); !ok {
			return true, false
		}
		return true, true
	}
	if reference.ValidateTag(ref) != nil {
		errcode.Write(w, errcode.TagInvalid.Errorf("invalid tag %q", ref))
		return false, false
	}
	return false, true
}

func manifestUnknown(w http.ResponseWriter, name, ref string) {
	errcode.Write(w, errcode.ManifestUnknown.Errorf("manifest %s is unknown to repository %s", ref, name).WithDetail(map[string]string{"reference": ref}))
}

// getManifest answers GET and HEAD /v2/<name>/manifests/<reference>.
func (g *Registry) getManifest(w http.ResponseWriter, r *http.Request, rt route) {
	isDigest, ok := g.parseReference(w, rt.ref)
	if !ok {
		return
	}
	m, err := g.lookupManifest(rt.name, rt.ref, isDigest)
	if err != nil {
		manifestUnknown(w, rt.name, rt.ref)
		return
	}
	var f *os.File
	if r.Method == http.MethodGet {
		if f, err = g.store.Open(m.Digest); err != nil {
			manifestUnknown(w, rt.name, rt.ref)
			return
		}
		defer f.Close()
	}
	h := w.Header()
	h.Set("Content-Type", m.MediaType)
	setInt(h, "Content-Length", m.Size)
	h.Set("Docker-Content-Digest", string(m.Digest))
	h.Set("Etag", `"`+string(m.Digest)+`"`)
	w.WriteHeader(http.StatusOK)
	if f != nil {
		io.Copy(w, io.LimitReader(f, m.Size))
	}
}

// putManifest answers PUT /v2/<name>/manifests/<reference>: the manifest is validated (image
// package: schema, descriptors, media type agreeing with the body), everything it references
// must be in the repository, then it is stored, its referrer entry written, then it becomes
// visible by digest, then by tag.
func (g *Registry) putManifest(w http.ResponseWriter, r *http.Request, rt route) {
	isDigest, ok := g.parseReference(w, rt.ref)
	if !ok {
		return
	}
	var tags []string
	if !isDigest {
		tags = append(tags, rt.ref)
	}
	for _, t := range r.URL.Query()["tag"] {
		if reference.ValidateTag(t) != nil {
			errcode.Write(w, errcode.TagInvalid.Errorf("invalid tag %q", t))
			return
		}
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	if r.ContentLength > content.MaxDocumentSize {
		errcode.Write(w, errcode.ManifestTooLarge.Errorf("manifest of %d bytes is over the %d byte limit", r.ContentLength, content.MaxDocumentSize))
		return
	}
	body, err := io.ReadAll(io.LimitReader(bodyReader{r.Body}, content.MaxDocumentSize+1))
	if err != nil {
		errcode.Write(w, errcode.ManifestInvalid.Errorf("read manifest: %v", err))
		return
	}
	if len(body) > content.MaxDocumentSize {
		errcode.Write(w, errcode.ManifestTooLarge.Errorf("manifest is over the %d byte limit", content.MaxDocumentSize))
		return
	}
	mt := r.Header.Get("Content-Type")
	if parsed, _, err := mime.ParseMediaType(mt); err == nil {
		mt = parsed
	}
	if mt == "" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		json.Unmarshal(body, &probe)
		mt = probe.MediaType
	}
	alg := digest.SHA256
	if isDigest {
		alg = digest.Digest(rt.ref).Algorithm()
	}
	desc := ocispec.Descriptor{MediaType: mt, Digest: alg.FromBytes(body), Size: int64(len(body))}
	if isDigest && desc.Digest != digest.Digest(rt.ref) {
		errcode.Write(w, errcode.DigestInvalid.Errorf("manifest body hashes to %s, not %s", desc.Digest, rt.ref))
		return
	}
	if !image.IsManifest(mt) && !image.IsIndex(mt) {
		errcode.Write(w, errcode.ManifestInvalid.Errorf("media type %q is not a manifest or an index", mt))
		return
	}
	doc, err := image.Parse(desc, body)
	if err != nil {
		errcode.Write(w, errcode.ManifestInvalid.New(err.Error()))
		return
	}
	for _, c := range doc.Children() {
		if len(c.URLs) > 0 || image.IsNonDistributable(c.MediaType) {
			continue // may live elsewhere (image-spec non-distributable layers)
		}
		var err error
		if image.IsManifest(c.MediaType) || image.IsIndex(c.MediaType) {
			_, err = os.Lstat(g.manifestLink(rt.name, c.Digest))
		} else {
			_, err = g.statBlob(rt.name, c.Digest)
		}
		if err != nil {
			errcode.Write(w, errcode.ManifestBlobUnknown.Errorf("%s %s is not in repository %s", c.MediaType, c.Digest, rt.name).
				WithDetail(map[string]string{"digest": string(c.Digest)}))
			return
		}
	}
	ctx := context.WithoutCancel(r.Context())
	if err := g.store.Push(ctx, desc, bytes.NewReader(body)); err != nil {
		g.serverError(w, r, err)
		return
	}
	subject := doc.Subject()
	if subject != nil {
		b, _ := json.Marshal(referrerDescriptor(doc, desc))
		if err := writeAtomic(filepath.Join(g.referrersDir(rt.name, subject.Digest), referrerEntry(desc.Digest)), b); err != nil {
			g.serverError(w, r, err)
			return
		}
	}
	if err := writeAtomic(g.manifestLink(rt.name, desc.Digest), []byte(mt)); err != nil {
		g.serverError(w, r, err)
		return
	}
	for _, t := range tags {
		if err := writeAtomic(g.tagPath(rt.name, t), []byte(desc.Digest)); err != nil {
			g.serverError(w, r, err)
			return
		}
	}
	h := w.Header()
	h.Set("Location", "/v2/"+rt.name+"/manifests/"+string(desc.Digest))
	h.Set("Docker-Content-Digest", string(desc.Digest))
	if subject != nil {
		h.Set("OCI-Subject", string(subject.Digest))
	}
	if len(tags) > 0 && isDigest {
		h.Set("OCI-Tag", strings.Join(tags, ", "))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// referrerDescriptor is the entry of a manifest in its subject's referrers list: its
// artifactType, or for a manifest without one its config's media type (distribution-spec).
func referrerDescriptor(doc *image.Document, desc ocispec.Descriptor) ocispec.Descriptor {
	out := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	switch {
	case doc.Manifest != nil:
		out.ArtifactType = doc.Manifest.ArtifactType
		if out.ArtifactType == "" {
			out.ArtifactType = doc.Manifest.Config.MediaType
		}
		out.Annotations = doc.Manifest.Annotations
	case doc.Index != nil:
		out.ArtifactType = doc.Index.ArtifactType
		out.Annotations = doc.Index.Annotations
	}
	return out
}

// deleteManifest deletes a tag, or a manifest by digest (with its tags and referrer entry).
func (g *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, rt route) {
	isDigest, ok := g.parseReference(w, rt.ref)
	if !ok {
		return
	}
	if !isDigest {
		if err := removeDurably(g.tagPath(rt.name, rt.ref)); err != nil {
			if errors.Is(err, os.ErrNotExist) || isNotDir(err) {
				manifestUnknown(w, rt.name, rt.ref)
			} else {
				g.serverError(w, r, err)
			}
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	d := digest.Digest(rt.ref)
	m, err := g.lookupManifest(rt.name, rt.ref, true)
	if err != nil {
		manifestUnknown(w, rt.name, rt.ref)
		return
	}
	if err := removeDurably(g.manifestLink(rt.name, d)); err != nil {
		if errors.Is(err, os.ErrNotExist) || isNotDir(err) {
			manifestUnknown(w, rt.name, rt.ref)
		} else {
			g.serverError(w, r, err)
		}
		return
	}
	// Clean up what named it: its referrer entry and the tags pointing at it.
	if b, err := content.ReadAll(r.Context(), g.store, ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: m.Size}, 0); err == nil {
		if subj, err := image.Subject(ocispec.Descriptor{MediaType: m.MediaType, Digest: d, Size: m.Size}, b); err == nil && subj != nil {
			removeDurably(filepath.Join(g.referrersDir(rt.name, subj.Digest), referrerEntry(d)))
		}
	}
	tags, _ := listDir(filepath.Join(g.repoDir(rt.name), "_tags"))
	for _, t := range tags {
		if b, err := os.ReadFile(g.tagPath(rt.name, t)); err == nil && strings.TrimSpace(string(b)) == string(d) {
			removeDurably(g.tagPath(rt.name, t))
		}
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// paginate answers the n and last parameters of a listing (distribution-spec "Listing Tags"):
// the page of all (sorted) after last, at most n entries, never nil. When more follow it sets
// the Link header to path with the next page's parameters. ok is false once an error is written.
func paginate(w http.ResponseWriter, all []string, q url.Values, path string) (page []string, ok bool) {
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		for i < len(all) && all[i] <= last {
			i++
		}
		all = all[i:]
	}
	page = all
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			errcode.Write(w, errcode.PaginationNumberInvalid.Errorf("invalid n %q", ns))
			return nil, false
		}
		if n < len(all) {
			page = all[:n]
			if n > 0 {
				w.Header().Set("Link", "<"+path+"?n="+strconv.Itoa(n)+"&last="+url.QueryEscape(page[n-1])+`>; rel="next"`)
			}
		}
	}
	if page == nil {
		page = []string{}
	}
	return page, true
}

func writeJSON(w http.ResponseWriter, mediaType string, v any) {
	b, _ := json.Marshal(v)
	h := w.Header()
	h.Set("Content-Type", mediaType)
	setInt(h, "Content-Length", int64(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

func (g *Registry) listTags(w http.ResponseWriter, r *http.Request, rt route) {
	if _, err := os.Lstat(g.repoDir(rt.name)); err != nil {
		errcode.Write(w, errcode.NameUnknown.Errorf("repository %s is unknown", rt.name))
		return
	}
	all, err := listDir(filepath.Join(g.repoDir(rt.name), "_tags"))
	if err != nil {
		g.serverError(w, r, err)
		return
	}
	page, ok := paginate(w, all, r.URL.Query(), "/v2/"+rt.name+"/tags/list")
	if !ok {
		return
	}
	writeJSON(w, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, page})
}

func (g *Registry) getCatalog(w http.ResponseWriter, r *http.Request) {
	all, err := g.catalog()
	if err != nil {
		g.serverError(w, r, err)
		return
	}
	page, ok := paginate(w, all, r.URL.Query(), "/v2/_catalog")
	if !ok {
		return
	}
	writeJSON(w, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{page})
}

func (g *Registry) getReferrers(w http.ResponseWriter, r *http.Request, rt route) {
	d, ok := g.parseDigest(w, rt.ref)
	if !ok {
		return
	}
	at := r.URL.Query().Get("artifactType")
	list, err := g.referrers(rt.name, d, at)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		g.serverError(w, r, err)
		return
	}
	if at != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	writeJSON(w, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specsVersioned,
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: list,
	})
}
