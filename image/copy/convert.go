package copy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// Converted is a Source that shows the graph of one root with its manifests and indexes
// converted to another format (`wharf copy --format`, skopeo's --format): the media types of
// the documents and of the descriptors in them are the format's (image.ConvertMediaType).
// Configs and layers keep their bytes; only the documents that name them change, and with them
// their digests, up to the root. Everything else is read from the source as it is.
type Converted struct {
	src     Source
	format  image.Format
	root    ocispec.Descriptor
	docs    map[digest.Digest][]byte             // converted documents, by their new digest
	mapped  map[digest.Digest]ocispec.Descriptor // source digest → converted descriptor
	changes []Change
}

// Change is one document whose digest a conversion changed.
type Change struct {
	From, To ocispec.Descriptor
}

// Convert reads the documents of root's graph in src (every platform of an index; verified,
// capped and validated, at most image.MaxIndexDepth indexes deep) and converts them to format
// f, children first. A manifest with a subject or an artifactType has no Docker form
// (errdef.ErrUnsupported). Once Convert returns, the Converted is read-only and safe for
// concurrent use.
func Convert(ctx context.Context, src Source, root ocispec.Descriptor, f image.Format) (*Converted, error) {
	c := &Converted{src: src, format: f, docs: map[digest.Digest][]byte{}, mapped: map[digest.Digest]ocispec.Descriptor{}}
	var err error
	if c.root, err = c.convert(ctx, root, 0); err != nil {
		return nil, fmt.Errorf("convert to %s: %w", f, err)
	}
	return c, nil
}

// Root is the converted root: what to copy.
func (c *Converted) Root() ocispec.Descriptor { return c.root }

// Changes lists the documents whose digest changed, children before their parents.
func (c *Converted) Changes() []Change { return append([]Change(nil), c.changes...) }

// convert returns d as it is in the target format (its documents converted, children first).
func (c *Converted) convert(ctx context.Context, d ocispec.Descriptor, depth int) (ocispec.Descriptor, error) {
	if nd, ok := c.mapped[d.Digest]; ok {
		out := d
		out.MediaType, out.Digest, out.Size = nd.MediaType, nd.Digest, nd.Size
		return out, nil
	}
	if depth > image.MaxIndexDepth {
		return d, fmt.Errorf("%s: %w: indexes nested too deep", d.Digest, errdef.ErrInvalidArgument)
	}
	b, err := content.ReadAll(ctx, c.src, d, 0)
	if err != nil {
		return d, err
	}
	var nb []byte
	switch {
	case image.IsIndex(d.MediaType):
		nb, err = c.convertIndex(ctx, d, b, depth)
	case image.IsManifest(d.MediaType):
		nb, err = c.convertManifest(d, b)
	default:
		return d, nil // not a document: kept as it is
	}
	if err != nil {
		return d, err
	}
	return c.record(d, b, nb), nil
}

// convertIndex re-encodes the index d (bytes b) with its manifests converted.
func (c *Converted) convertIndex(ctx context.Context, d ocispec.Descriptor, b []byte, depth int) ([]byte, error) {
	idx, err := image.ParseIndex(d, b)
	if err != nil {
		return nil, err
	}
	out := *idx
	out.Manifests = nil
	for _, m := range idx.Manifests {
		nm, err := c.convert(ctx, m, depth+1)
		if err != nil {
			return nil, err
		}
		out.Manifests = append(out.Manifests, nm)
	}
	if out.MediaType, err = c.mediaType(d.MediaType); err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// convertManifest re-encodes the manifest d (bytes b) with the format's media types.
func (c *Converted) convertManifest(d ocispec.Descriptor, b []byte) ([]byte, error) {
	m, err := image.ParseManifest(d, b)
	if err != nil {
		return nil, err
	}
	out := *m
	if out.MediaType, err = c.mediaType(d.MediaType); err != nil {
		return nil, err
	}
	if c.format == image.FormatDocker && (m.Subject != nil || m.ArtifactType != "") {
		return nil, fmt.Errorf("manifest %s: %w: docker schema 2 has no subject or artifactType", d.Digest, errdef.ErrUnsupported)
	}
	if out.Config.MediaType, err = c.mediaType(m.Config.MediaType); err != nil {
		return nil, err
	}
	out.Layers = nil
	for _, l := range m.Layers {
		if l.MediaType, err = c.mediaType(l.MediaType); err != nil {
			return nil, err
		}
		out.Layers = append(out.Layers, l)
	}
	return json.Marshal(out)
}

// record keeps the conversion nb of d (original bytes b) and returns its descriptor: d itself
// when neither its media type nor what it references changed (its bytes are served as they
// are), else the descriptor of nb.
func (c *Converted) record(d ocispec.Descriptor, b, nb []byte) ocispec.Descriptor {
	nd := d
	nd.MediaType, _ = c.mediaType(d.MediaType)
	if nd.MediaType == d.MediaType && !changedChildren(b, nb) {
		c.mapped[d.Digest] = d
		return d
	}
	nd.Digest, nd.Size = digest.FromBytes(nb), int64(len(nb))
	nd.Data = nil
	c.docs[nd.Digest] = nb
	c.mapped[d.Digest] = nd
	c.changes = append(c.changes, Change{From: d, To: nd})
	return nd
}

func (c *Converted) mediaType(mt string) (string, error) { return image.ConvertMediaType(mt, c.format) }

// changedChildren reports whether a re-encoded document differs from the original in what it
// references (the media types and digests of its descriptors).
func changedChildren(orig, conv []byte) bool {
	var a, b struct {
		Config    *ocispec.Descriptor  `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
		Manifests []ocispec.Descriptor `json:"manifests"`
	}
	json.Unmarshal(orig, &a)
	json.Unmarshal(conv, &b)
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return !bytes.Equal(ab, bb)
}

// Fetch serves a converted document, or reads d from the source.
func (c *Converted) Fetch(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if b, ok := c.docs[d.Digest]; ok {
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	return c.src.Fetch(ctx, d)
}

// Exists is true for a converted document, else the source's answer.
func (c *Converted) Exists(ctx context.Context, d ocispec.Descriptor) (bool, error) {
	if _, ok := c.docs[d.Digest]; ok {
		return true, nil
	}
	return c.src.Exists(ctx, d)
}

// Resolve resolves the converted root's digest to it, anything else in the source.
func (c *Converted) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	if ref == c.root.Digest.String() {
		return c.root, nil
	}
	return c.src.Resolve(ctx, ref)
}
