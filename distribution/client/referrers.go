package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// FallbackTag is the tag of the referrers index a client keeps for subject d on a registry
// without the referrers API (distribution-spec "Referrers Tag Schema"): <alg>-<hex>, cut to
// 128 characters.
func FallbackTag(d ocispec.Descriptor) string {
	t := strings.Replace(d.Digest.String(), ":", "-", 1)
	if len(t) > 128 {
		t = t[:128]
	}
	return t
}

// Referrers lists the manifests whose subject is d (GET /v2/<name>/referrers/<digest>), only
// those of artifactType when it is not empty. A registry without the referrers API (404) is
// read through the fallback tag schema instead.
func (r *Repository) Referrers(ctx context.Context, d ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	if err := content.ValidateDescriptor(d); err != nil {
		return nil, err
	}
	what := fmt.Sprintf("list referrers of %s@%s", r, d.Digest)
	p := r.path("referrers", d.Digest.String())
	if artifactType != "" {
		p += "?" + url.Values{"artifactType": {artifactType}}.Encode()
	}
	resp, err := r.client.do(ctx, &request{method: http.MethodGet, host: r.host, path: p,
		header: http.Header{"Accept": {image.MediaTypeIndex}}, scopes: []string{pullScope(r.Name)}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var idx ocispec.Index
	switch resp.StatusCode {
	case http.StatusOK:
		b, err := io.ReadAll(io.LimitReader(resp.Body, content.MaxDocumentSize+1))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", what, errdef.ErrUnavailable, err)
		}
		if len(b) > content.MaxDocumentSize {
			return nil, fmt.Errorf("%s: %w", what, errdef.ErrTooLarge)
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: %w: %v", what, errdef.ErrInvalidArgument, err)
		}
		if resp.Header.Get("OCI-Filters-Applied") != "" {
			artifactType = ""
		}
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest:
		drain(resp)
		b, _, err := r.fetchManifest(ctx, FallbackTag(d), 0)
		if errors.Is(err, errdef.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: fallback tag %s: %w: %v", what, FallbackTag(d), errdef.ErrInvalidArgument, err)
		}
	default:
		return nil, responseError(resp, what)
	}
	var out []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if err := content.ValidateDescriptor(m); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if artifactType == "" || m.ArtifactType == artifactType {
			out = append(out, m)
		}
	}
	return out, nil
}

// indexReferrer adds the manifest d (bytes b) to the fallback referrers index of its subject,
// for a registry that did not take note of the subject itself (no OCI-Subject header).
func (r *Repository) indexReferrer(ctx context.Context, d ocispec.Descriptor, b []byte) error {
	var doc struct {
		ArtifactType string              `json:"artifactType"`
		Config       *ocispec.Descriptor `json:"config"`
		Subject      *ocispec.Descriptor `json:"subject"`
		Annotations  map[string]string   `json:"annotations"`
	}
	if json.Unmarshal(b, &doc) != nil || doc.Subject == nil {
		return nil
	}
	if err := content.ValidateDescriptor(*doc.Subject); err != nil {
		return err
	}
	entry := ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, ArtifactType: doc.ArtifactType, Annotations: doc.Annotations}
	if entry.ArtifactType == "" && doc.Config != nil && image.IsManifest(d.MediaType) {
		entry.ArtifactType = doc.Config.MediaType
	}
	tag := FallbackTag(*doc.Subject)
	idx := ocispec.Index{MediaType: image.MediaTypeIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	old, _, err := r.fetchManifest(ctx, tag, 0)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
	case err != nil:
		return fmt.Errorf("update referrers of %s: %w", doc.Subject.Digest, err)
	default:
		if err := json.Unmarshal(old, &idx); err != nil {
			return fmt.Errorf("update referrers of %s: fallback tag %s: %w: %v", doc.Subject.Digest, tag, errdef.ErrInvalidArgument, err)
		}
	}
	for _, m := range idx.Manifests {
		if m.Digest == d.Digest {
			return nil
		}
	}
	idx.Manifests = append(idx.Manifests, entry)
	nb, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	nd := ocispec.Descriptor{MediaType: image.MediaTypeIndex, Digest: digest.FromBytes(nb), Size: int64(len(nb))}
	return r.putTag(ctx, nd, nb, tag)
}
