package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// manifestAccept is the Accept header of manifest requests: every manifest and index media
// type wharf reads.
var manifestAccept = strings.Join([]string{
	image.MediaTypeIndex, image.MediaTypeManifest,
	image.MediaTypeDockerManifestList, image.MediaTypeDockerManifest,
}, ", ")

// Repository is one repository of a registry as a content.Target: blobs and manifests by
// digest, tags, plus Delete, Referrers and Mount. Manifests and indexes are told from blobs by
// the descriptor's media type.
type Repository struct {
	client *Client
	// Domain is the registry as written in references ("docker.io", "localhost:5000").
	Domain string
	// Name is the repository (distribution-spec <name>).
	Name string
	host string

	mu   sync.Mutex
	docs map[digest.Digest][]byte // manifests pushed or fetched, kept for Tag
}

var (
	_ content.Target         = (*Repository)(nil)
	_ content.Deleter        = (*Repository)(nil)
	_ content.ReferrerLister = (*Repository)(nil)
	_ content.Mounter        = (*Repository)(nil)
)

// Repository returns the repository name of the registry domain. name is checked against
// the distribution-spec grammar.
func (c *Client) Repository(domain, name string) (*Repository, error) {
	if err := reference.ValidateRepository(name); err != nil {
		return nil, err
	}
	if domain == "" {
		return nil, fmt.Errorf("open repository %s: %w: no registry", name, errdef.ErrInvalidArgument)
	}
	return &Repository{client: c, Domain: domain, Name: name, host: Endpoint(domain), docs: map[digest.Digest][]byte{}}, nil
}

func (r *Repository) String() string { return r.Domain + "/" + r.Name }

func (r *Repository) path(kind, ref string) string {
	return "/v2/" + r.Name + "/" + kind + "/" + ref
}

func isDocument(mt string) bool { return image.IsManifest(mt) || image.IsIndex(mt) }

func (r *Repository) remember(d digest.Digest, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.docs) > 256 {
		clear(r.docs)
	}
	r.docs[d] = b
}

// Exists reports whether the repository holds d: HEAD of the manifest (for manifest and
// index media types) or of the blob.
func (r *Repository) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	if err := content.ValidateDigest(d.Digest); err != nil {
		return false, err
	}
	req := &request{method: http.MethodHead, host: r.host, path: r.path("blobs", d.Digest.String()), scopes: []string{pullScope(r.Name)}}
	if isDocument(d.MediaType) {
		req.path = r.path("manifests", d.Digest.String())
		req.header = http.Header{"Accept": {manifestAccept}}
	}
	resp, err := r.client.do(ctx, req)
	if err != nil {
		return false, fmt.Errorf("probe %s@%s: %w", r, d.Digest, err)
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("probe %s@%s: %w", r, d.Digest, errorOf(resp))
}

// errorOf is responseError for a response whose body is gone (HEAD).
func errorOf(resp *http.Response) error {
	resp.Body = io.NopCloser(strings.NewReader(""))
	return errcode.FromResponse(resp)
}

// Fetch reads d: a manifest (for manifest and index media types) or a blob. Blob downloads
// that break are resumed with Range requests from where they stopped. The reader yields at
// most d.Size bytes; a response of another length is refused with errdef.ErrSizeMismatch.
// A blob the registry does not hold but whose descriptor lists urls (a foreign layer) is
// fetched from them, without credentials.
func (r *Repository) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := content.ValidateDescriptor(d); err != nil {
		return nil, err
	}
	if isDocument(d.MediaType) {
		b, _, err := r.fetchManifest(ctx, d.Digest.String(), d.Size)
		if err != nil {
			return nil, err
		}
		if int64(len(b)) != d.Size {
			return nil, fmt.Errorf("fetch %s@%s: %w: %d bytes, descriptor says %d", r, d.Digest, errdef.ErrSizeMismatch, len(b), d.Size)
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	br := &blobReader{repo: r, ctx: ctx, desc: d}
	if err := br.open(); err != nil {
		if errors.Is(err, errdef.ErrNotFound) && len(d.URLs) > 0 {
			return r.fetchURLs(ctx, d)
		}
		return nil, err
	}
	return br, nil
}

// fetchManifest GETs a manifest by tag or digest; with limit > 0 a larger document is refused.
func (r *Repository) fetchManifest(ctx context.Context, ref string, limit int64) ([]byte, ocispec.Descriptor, error) {
	resp, err := r.client.do(ctx, &request{method: http.MethodGet, host: r.host, path: r.path("manifests", ref),
		header: http.Header{"Accept": {manifestAccept}}, scopes: []string{pullScope(r.Name)}})
	what := "fetch manifest " + r.String() + refSep(ref) + ref
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, ocispec.Descriptor{}, responseError(resp, what)
	}
	defer resp.Body.Close()
	if limit <= 0 || limit > content.MaxDocumentSize {
		limit = content.MaxDocumentSize
	}
	if resp.ContentLength > limit {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%s: %w: %d bytes (at most %d)", what, errdef.ErrSizeMismatch, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%s: %w: %w", what, errdef.ErrUnavailable, err)
	}
	if int64(len(b)) > limit {
		return nil, ocispec.Descriptor{}, fmt.Errorf("%s: %w: over %d bytes", what, errdef.ErrSizeMismatch, limit)
	}
	mt := mediaTypeOf(resp.Header.Get("Content-Type"), b)
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if dd, err := digest.Parse(ref); err == nil {
		if got := dd.Algorithm().FromBytes(b); got != dd {
			return nil, ocispec.Descriptor{}, fmt.Errorf("%s: %w: content hashes to %s", what, errdef.ErrDigestMismatch, got)
		}
		d.Digest = dd
	} else if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if hd, err := digest.Parse(h); err == nil && hd.Algorithm().Available() && hd.Algorithm().FromBytes(b) == hd {
			d.Digest = hd
		}
	}
	r.remember(d.Digest, b)
	return b, d, nil
}

func refSep(ref string) string {
	if strings.Contains(ref, ":") {
		return "@"
	}
	return ":"
}

// mediaTypeOf is the media type of a manifest: the Content-Type, or the document's own
// mediaType field when the registry sends none or a generic one.
func mediaTypeOf(ct string, b []byte) string {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(ct)
	if isDocument(ct) {
		return ct
	}
	var doc struct {
		MediaType string            `json:"mediaType"`
		Manifests json.RawMessage   `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(b, &doc) == nil {
		if doc.MediaType != "" {
			return doc.MediaType
		}
		if doc.Manifests != nil {
			return image.MediaTypeIndex
		}
	}
	if ct == "" || ct == "application/json" || ct == "application/octet-stream" {
		return image.MediaTypeManifest
	}
	return ct
}

// Resolve returns the descriptor of the manifest or index ref (a tag or a digest) names:
// HEAD first, a GET when the registry does not say the digest.
func (r *Repository) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	if ref == "" {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w: no tag or digest", r, errdef.ErrInvalidArgument)
	}
	if strings.Contains(ref, ":") {
		if err := content.ValidateDigest(digest.Digest(ref)); err != nil {
			return ocispec.Descriptor{}, err
		}
	} else if err := reference.ValidateTag(ref); err != nil {
		return ocispec.Descriptor{}, err
	}
	what := "resolve " + r.String() + refSep(ref) + ref
	resp, err := r.client.do(ctx, &request{method: http.MethodHead, host: r.host, path: r.path("manifests", ref),
		header: http.Header{"Accept": {manifestAccept}}, scopes: []string{pullScope(r.Name)}})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, err)
	}
	drain(resp)
	if resp.StatusCode == http.StatusNotFound {
		return ocispec.Descriptor{}, fmt.Errorf("%s: manifest unknown: %w", what, errdef.ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w", what, errorOf(resp))
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	dg, derr := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if derr == nil && isDocument(strings.TrimSpace(ct)) && resp.ContentLength >= 0 && content.ValidateDigest(dg) == nil &&
		(!strings.Contains(ref, ":") || dg.String() == ref) {
		return ocispec.Descriptor{MediaType: strings.TrimSpace(ct), Digest: dg, Size: resp.ContentLength}, nil
	}
	_, d, err := r.fetchManifest(ctx, ref, 0)
	return d, err
}

// FetchReference returns the descriptor and bytes of the manifest or index ref names.
func (r *Repository) FetchReference(ctx context.Context, ref string) (ocispec.Descriptor, []byte, error) {
	b, d, err := r.fetchManifest(ctx, ref, 0)
	return d, b, err
}

// Push stores d: a manifest or index (PUT by digest) for those media types, else a blob
// (upload, see Options.ChunkSize). The content is verified against d's size and digest
// before the registry is asked to commit it.
func (r *Repository) Push(ctx context.Context, d ocispec.Descriptor, rd io.Reader) error {
	if err := content.ValidateDescriptor(d); err != nil {
		return err
	}
	if isDocument(d.MediaType) {
		b, err := r.readDocument(d, rd)
		if err != nil {
			return err
		}
		return r.putManifest(ctx, d, b, d.Digest.String())
	}
	return r.pushBlob(ctx, d, rd)
}

// readDocument reads the manifest or index d from rd, verified, within the size cap.
func (r *Repository) readDocument(d ocispec.Descriptor, rd io.Reader) ([]byte, error) {
	if d.Size > content.MaxDocumentSize {
		return nil, fmt.Errorf("push %s@%s: %w: %d bytes (at most %d)", r, d.Digest, errdef.ErrTooLarge, d.Size, content.MaxDocumentSize)
	}
	b, err := io.ReadAll(content.NewVerifyReader(rd, d))
	if err != nil {
		return nil, fmt.Errorf("push %s@%s: %w", r, d.Digest, err)
	}
	return b, nil
}

// PushTag stores the manifest or index read from rd as tag ref in one PUT (content.TagPusher).
func (r *Repository) PushTag(ctx context.Context, d ocispec.Descriptor, rd io.Reader, ref string) error {
	if err := content.ValidateDescriptor(d); err != nil {
		return err
	}
	if !isDocument(d.MediaType) {
		return fmt.Errorf("push %s@%s as %s: %w: %s is not a manifest or index", r, d.Digest, ref, errdef.ErrInvalidArgument, d.MediaType)
	}
	if err := reference.ValidateTag(ref); err != nil {
		return err
	}
	b, err := r.readDocument(d, rd)
	if err != nil {
		return err
	}
	return r.putManifest(ctx, d, b, ref)
}

// putTag PUTs b as ref without referrer bookkeeping.
func (r *Repository) putTag(ctx context.Context, d ocispec.Descriptor, b []byte, ref string) error {
	return r.put(ctx, d, b, ref, false)
}

// putManifest PUTs b as ref (a digest or a tag) with d's media type.
func (r *Repository) putManifest(ctx context.Context, d ocispec.Descriptor, b []byte, ref string) error {
	return r.put(ctx, d, b, ref, true)
}

func (r *Repository) put(ctx context.Context, d ocispec.Descriptor, b []byte, ref string, referrers bool) error {
	what := "push manifest " + r.String() + refSep(ref) + ref
	resp, err := r.client.do(ctx, &request{method: http.MethodPut, host: r.host, path: r.path("manifests", ref),
		header: http.Header{"Content-Type": {d.MediaType}}, body: b, scopes: []string{pushScope(r.Name)}})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return responseError(resp, what)
	}
	drain(resp)
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && h != d.Digest.String() && strings.HasPrefix(h, string(d.Digest.Algorithm())+":") {
		return fmt.Errorf("%s: %w: the registry stored it as %s", what, errdef.ErrDigestMismatch, h)
	}
	r.remember(d.Digest, b)
	if referrers && resp.Header.Get("OCI-Subject") == "" && strings.Contains(ref, ":") {
		if err := r.indexReferrer(ctx, d, b); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// Tag names the manifest or index d with tag: its bytes (pushed or fetched through this
// Repository, or fetched now) are PUT under the tag. A digest as ref only checks that d is
// there.
func (r *Repository) Tag(ctx context.Context, d ocispec.Descriptor, ref string) error {
	if err := content.ValidateDescriptor(d); err != nil {
		return err
	}
	if strings.Contains(ref, ":") {
		if ref != d.Digest.String() {
			return fmt.Errorf("tag %s@%s as %q: %w: a tag cannot hold ':'", r, d.Digest, ref, errdef.ErrInvalidArgument)
		}
		ok, err := r.Exists(ctx, d)
		if err == nil && !ok {
			err = fmt.Errorf("tag %s@%s: %w", r, d.Digest, errdef.ErrNotFound)
		}
		return err
	}
	if err := reference.ValidateTag(ref); err != nil {
		return err
	}
	r.mu.Lock()
	b, ok := r.docs[d.Digest]
	r.mu.Unlock()
	if !ok {
		var err error
		b, err = content.ReadAll(ctx, r, d, 0)
		if err != nil {
			return fmt.Errorf("tag %s@%s: %w", r, d.Digest, err)
		}
	}
	return r.putManifest(ctx, d, b, ref)
}

// Delete removes the manifest with digest dg (every tag naming it goes too) or, when the
// registry knows no such manifest, the blob.
func (r *Repository) Delete(ctx context.Context, dg digest.Digest) error {
	if err := content.ValidateDigest(dg); err != nil {
		return err
	}
	err := r.delete(ctx, "manifests", dg.String())
	if errors.Is(err, errdef.ErrNotFound) {
		err = r.delete(ctx, "blobs", dg.String())
	}
	return err
}

// DeleteManifest removes the manifest ref names (a digest; a tag is resolved first, as
// skopeo delete does, which removes every tag of that manifest).
func (r *Repository) DeleteManifest(ctx context.Context, ref string) error {
	if !strings.Contains(ref, ":") {
		d, err := r.Resolve(ctx, ref)
		if err != nil {
			return err
		}
		ref = d.Digest.String()
	}
	return r.delete(ctx, "manifests", ref)
}

func (r *Repository) delete(ctx context.Context, kind, ref string) error {
	what := "delete " + r.String() + refSep(ref) + ref
	resp, err := r.client.do(ctx, &request{method: http.MethodDelete, host: r.host, path: r.path(kind, ref),
		scopes: []string{deleteScope(r.Name)}})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return responseError(resp, what)
	}
	drain(resp)
	r.mu.Lock()
	delete(r.docs, digest.Digest(ref))
	r.mu.Unlock()
	return nil
}

// Mount makes blob d of repository from (same registry) visible here without transferring
// it (POST ?mount=&from=; from "" asks for an anonymous mount). A registry that answers with
// an upload instead has not mounted: the upload is cancelled and the error wraps
// errdef.ErrNotFound, so the caller copies the blob.
func (r *Repository) Mount(ctx context.Context, d ocispec.Descriptor, from string) error {
	if err := content.ValidateDescriptor(d); err != nil {
		return err
	}
	q := url.Values{"mount": {d.Digest.String()}}
	scopes := []string{pushScope(r.Name)}
	if from != "" {
		if err := reference.ValidateRepository(from); err != nil {
			return err
		}
		q.Set("from", from)
		scopes = append(scopes, pullScope(from))
	}
	what := fmt.Sprintf("mount %s into %s", d.Digest, r)
	resp, err := r.client.do(ctx, &request{method: http.MethodPost, host: r.host, path: "/v2/" + r.Name + "/blobs/uploads/?" + q.Encode(), scopes: scopes})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		drain(resp)
		return nil
	case http.StatusAccepted:
		drain(resp)
		if loc, err := r.location(resp); err == nil {
			if resp, err := r.client.do(ctx, &request{method: http.MethodDelete, host: r.host, url: loc, scopes: scopes}); err == nil {
				drain(resp)
			}
		}
		return fmt.Errorf("%s: %w: the registry started an upload instead", what, errdef.ErrNotFound)
	}
	return responseError(resp, what)
}

// location resolves an upload's Location header against the request URL.
func (r *Repository) location(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", fmt.Errorf("upload to %s: %w: the registry sent no Location", r, errdef.ErrInvalidArgument)
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload to %s: %w: Location %q: %v", r, errdef.ErrInvalidArgument, loc, err)
	}
	return u.String(), nil
}

// Tags lists the repository's tags (content.TagLister): every page, as large as the registry
// makes them (TagPages asks for another size), each tag once, sorted.
func (r *Repository) Tags(ctx context.Context) ([]string, error) {
	all := []string{}
	if err := r.TagPages(ctx, 0, "", func(tags []string) error { all = append(all, tags...); return nil }); err != nil {
		return nil, err
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// TagPages lists tags page by page, from the one after last ("" for the start), calling fn
// with each page.
func (r *Repository) TagPages(ctx context.Context, n int, last string, fn func([]string) error) error {
	q := url.Values{}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if last != "" {
		q.Set("last", last)
	}
	p := "/v2/" + r.Name + "/tags/list"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return r.client.pages(ctx, r.host, p, []string{pullScope(r.Name)}, "list tags of "+r.String(), func(b []byte) error {
		var body struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return fmt.Errorf("list tags of %s: %w: %v", r, errdef.ErrInvalidArgument, err)
		}
		return fn(body.Tags)
	})
}

// Catalog lists the repositories of a registry (GET /v2/_catalog with Link pagination).
func (c *Client) Catalog(ctx context.Context, domain string, n int) ([]string, error) {
	p := "/v2/_catalog"
	if n > 0 {
		p += "?n=" + strconv.Itoa(n)
	}
	var all []string
	err := c.pages(ctx, Endpoint(domain), p, []string{catalogScope}, "list repositories of "+domain, func(b []byte) error {
		var body struct {
			Repositories []string `json:"repositories"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			return fmt.Errorf("list repositories of %s: %w: %v", domain, errdef.ErrInvalidArgument, err)
		}
		all = append(all, body.Repositories...)
		return nil
	})
	return all, err
}

// Ping checks that domain speaks distribution-spec and that the credentials are accepted
// (GET /v2/ answered, after authentication if asked).
func (c *Client) Ping(ctx context.Context, domain string) error {
	host := Endpoint(domain)
	resp, err := c.do(ctx, &request{method: http.MethodGet, host: host, path: "/v2/"})
	if err != nil {
		return fmt.Errorf("ping %s: %w", domain, err)
	}
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, "ping "+domain)
	}
	drain(resp)
	return nil
}

// pages GETs path and the pages its Link headers name (rel="next"), passing each body to fn.
func (c *Client) pages(ctx context.Context, host, path string, scopes []string, what string, fn func([]byte) error) error {
	for i := 0; path != "" && i < 100000; i++ {
		resp, err := c.do(ctx, &request{method: http.MethodGet, host: host, path: path, scopes: scopes})
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if resp.StatusCode != http.StatusOK {
			return responseError(resp, what)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, content.MaxDocumentSize))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s: %w: %w", what, errdef.ErrUnavailable, err)
		}
		if err := fn(b); err != nil {
			return err
		}
		path = nextLink(resp)
	}
	return nil
}

// nextLink returns the path and query of a Link: <…>; rel="next" header, or "".
func nextLink(resp *http.Response) string {
	for _, l := range resp.Header.Values("Link") {
		for _, part := range strings.Split(l, ",") {
			target, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) && !strings.Contains(params, "rel=next") {
				continue
			}
			target = strings.Trim(strings.TrimSpace(target), "<>")
			u, err := resp.Request.URL.Parse(target)
			if err != nil || u.Host != resp.Request.URL.Host {
				return ""
			}
			return u.RequestURI()
		}
	}
	return ""
}
