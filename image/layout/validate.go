package layout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/layer"
)

// ValidateOptions tunes Validate.
type ValidateOptions struct {
	// DiffIDs also decompresses every layer of an image and checks the digest of the
	// uncompressed stream against the config's rootfs.diff_ids (image-spec config.md).
	DiffIDs bool
	// Progress, when set, is called once per blob after it has been checked.
	Progress func(path []Step)
}

// Step is one node on the path from index.json to a blob.
type Step struct {
	Digest digest.Digest `json:"digest"`
	// Kind is the blob's role: "index", "manifest", "config", "layer" or "blob".
	Kind string `json:"kind"`
	// Tag is the ref name of an index.json entry (first step only).
	Tag string `json:"tag,omitempty"`
}

// ValidationError is a failure found by Validate, with the path that reaches the blob at
// fault. It unwraps to the cause (errdef.ErrDigestMismatch, errdef.ErrSizeMismatch,
// errdef.ErrInvalidDigest, errdef.ErrNotFound, errdef.ErrUnsafePath, an *image.Error…).
type ValidationError struct {
	Path []Step
	Err  error
}

// Error reads "index.json[TAG] → sha256:… (manifest) → sha256:… (layer): cause".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("index.json")
	for i, s := range e.Path {
		if i == 0 && s.Tag != "" {
			fmt.Fprintf(&b, "[%s]", s.Tag)
		}
		fmt.Fprintf(&b, " → %s (%s)", s.Digest, s.Kind)
	}
	msg := e.Err.Error()
	if n := len(e.Path); n > 0 {
		msg = strings.TrimPrefix(msg, string(e.Path[n-1].Digest)+": ")
	}
	b.WriteString(": ")
	b.WriteString(msg)
	return b.String()
}

func (e *ValidationError) Unwrap() error { return e.Err }

// ValidateResult counts what Validate checked.
type ValidateResult struct {
	Roots     int   `json:"roots"`
	Blobs     int   `json:"blobs"`
	Bytes     int64 `json:"bytes"`
	Indexes   int   `json:"indexes"`
	Manifests int   `json:"manifests"`
	Configs   int   `json:"configs"`
	Layers    int   `json:"layers"`
	Others    int   `json:"others"`
	// Skipped counts non-distributable layers absent from the layout (allowed by image-spec).
	Skipped int `json:"skipped,omitempty"`
}

// Validate checks every blob reachable from roots (every entry of index.json when roots is
// empty): each descriptor against the descriptor rules; each blob present, with exactly the
// descriptor's size and hashing to its digest (read in full, never through a symlink); each
// index, manifest and image config against the image-spec schema and semantics (image.Parse…),
// indexes nested at most image.MaxIndexDepth deep; and each image's config against its
// manifest (image.ValidateImage; artifacts are only checked blob by blob). The subject of a
// manifest is a weak reference and is not followed. A blob reached twice is checked once.
//
// The first failure stops the walk and is returned as a *ValidationError naming the path to
// the blob at fault. Non-distributable layers may be absent (image-layout.md lets blobs be
// fetched from elsewhere); they are counted in Skipped.
func (l *Layout) Validate(ctx context.Context, roots []ocispec.Descriptor, opts ValidateOptions) (ValidateResult, error) {
	v := &validator{l: l, opts: opts, seen: map[digest.Digest]bool{}}
	if len(roots) == 0 {
		idx, err := l.Index(ctx)
		if err != nil {
			return v.res, fmt.Errorf("validate %s: %w", l.root, err)
		}
		roots = idx.Manifests
	}
	for _, d := range roots {
		v.res.Roots++
		step := Step{Digest: d.Digest, Kind: image.KindName(d.MediaType), Tag: d.Annotations[RefName]}
		if err := v.visit(ctx, []Step{step}, d, 0); err != nil {
			return v.res, err
		}
	}
	return v.res, nil
}

type validator struct {
	l    *Layout
	opts ValidateOptions
	seen map[digest.Digest]bool
	res  ValidateResult
}

func child(path []Step, d ocispec.Descriptor, kind string) []Step {
	return append(append([]Step(nil), path...), Step{Digest: d.Digest, Kind: kind})
}

// visit checks d, reached by path (whose last step is d), and what it references.
func (v *validator) visit(ctx context.Context, path []Step, d ocispec.Descriptor, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fail := func(err error) error { return &ValidationError{Path: path, Err: err} }
	if err := content.ValidateDescriptor(d); err != nil {
		return fail(err)
	}
	if v.seen[d.Digest] {
		return nil
	}
	v.seen[d.Digest] = true
	kind := path[len(path)-1].Kind
	switch kind {
	case "index":
		if depth >= image.MaxIndexDepth {
			return fail(fmt.Errorf("%w: indexes nested more than %d deep", errdef.ErrInvalidArgument, image.MaxIndexDepth))
		}
		b, err := v.readDoc(ctx, d)
		if err != nil {
			return fail(err)
		}
		idx, err := image.ParseIndex(d, b)
		if err != nil {
			return fail(err)
		}
		v.res.Indexes++
		v.count(d, path)
		for _, m := range idx.Manifests {
			if err := v.visit(ctx, child(path, m, image.KindName(m.MediaType)), m, depth+1); err != nil {
				return err
			}
		}
		return nil
	case "manifest":
		b, err := v.readDoc(ctx, d)
		if err != nil {
			return fail(err)
		}
		m, err := image.ParseManifest(d, b)
		if err != nil {
			return fail(err)
		}
		v.res.Manifests++
		v.count(d, path)
		return v.image(ctx, path, m)
	default:
		return v.blob(ctx, path, d, nil)
	}
}

// image checks a manifest's config and layers.
func (v *validator) image(ctx context.Context, path []Step, m *ocispec.Manifest) error {
	cpath := child(path, m.Config, "config")
	if err := content.ValidateDescriptor(m.Config); err != nil {
		return &ValidationError{Path: cpath, Err: err}
	}
	var cfg *ocispec.Image
	if image.IsConfig(m.Config.MediaType) {
		b, err := v.readDoc(ctx, m.Config)
		if err != nil {
			return &ValidationError{Path: cpath, Err: err}
		}
		if cfg, err = image.ParseConfig(m.Config, b); err != nil {
			return &ValidationError{Path: cpath, Err: err}
		}
		if err := image.ValidateImage(m, cfg); err != nil && !errors.Is(err, errdef.ErrUnsupported) {
			return &ValidationError{Path: cpath, Err: err}
		}
		if !v.seen[m.Config.Digest] {
			v.seen[m.Config.Digest] = true
			v.res.Configs++
			v.count(m.Config, cpath)
		}
	} else if err := v.visit(ctx, cpath, m.Config, 0); err != nil {
		return err
	}
	for i, ld := range m.Layers {
		lpath := child(path, ld, "layer")
		if err := content.ValidateDescriptor(ld); err != nil {
			return &ValidationError{Path: lpath, Err: err}
		}
		if v.seen[ld.Digest] {
			continue
		}
		v.seen[ld.Digest] = true
		var diffID digest.Digest
		if v.opts.DiffIDs && cfg != nil && image.IsLayer(ld.MediaType) && i < len(cfg.RootFS.DiffIDs) {
			diffID = cfg.RootFS.DiffIDs[i]
		}
		if err := v.blob(ctx, lpath, ld, &diffID); err != nil {
			return err
		}
	}
	return nil
}

// readDoc reads a JSON document blob: capped, exact size, verified digest.
func (v *validator) readDoc(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	if err := v.checkSize(ctx, d); err != nil {
		return nil, err
	}
	return content.ReadAll(ctx, v.l, d, 0)
}

// checkSize compares the stored size with the descriptor before anything is read.
func (v *validator) checkSize(ctx context.Context, d ocispec.Descriptor) error {
	info, err := v.l.Info(ctx, d.Digest)
	if err != nil {
		return err
	}
	if info.Size != d.Size {
		return fmt.Errorf("%s: %w: blob has %d bytes, descriptor says %d", d.Digest, errdef.ErrSizeMismatch, info.Size, d.Size)
	}
	return nil
}

// blob reads a blob in full and verifies it; with a non-empty *diffID, it also hashes the
// uncompressed layer and compares.
func (v *validator) blob(ctx context.Context, path []Step, d ocispec.Descriptor, diffID *digest.Digest) error {
	fail := func(err error) error { return &ValidationError{Path: path, Err: err} }
	if err := v.checkSize(ctx, d); err != nil {
		if errors.Is(err, errdef.ErrNotFound) && image.IsNonDistributable(d.MediaType) {
			v.res.Skipped++
			return nil
		}
		return fail(err)
	}
	rc, err := v.l.Fetch(ctx, d)
	if err != nil {
		return fail(err)
	}
	defer rc.Close()
	vr := content.NewVerifyReader(&ctxReader{ctx: ctx, r: rc}, d)
	if diffID != nil && *diffID != "" {
		if err := checkDiffID(vr, d.MediaType, *diffID); err != nil {
			return fail(err)
		}
	}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return fail(err)
	}
	switch path[len(path)-1].Kind {
	case "layer":
		v.res.Layers++
	case "config":
		v.res.Configs++
	default:
		v.res.Others++
	}
	v.count(d, path)
	return nil
}

// checkDiffID decompresses a layer from r and compares the digest of the tar stream with want.
// The caller drains r afterwards, which completes its verification.
func checkDiffID(r io.Reader, mediaType string, want digest.Digest) error {
	if err := content.ValidateDigest(want); err != nil {
		return fmt.Errorf("config rootfs.diff_ids: %w", err)
	}
	tr, err := layer.Decompress(r, mediaType)
	if err != nil {
		return err
	}
	defer tr.Close()
	dg := want.Algorithm().Digester()
	if _, err := io.Copy(dg.Hash(), tr); err != nil {
		if errors.Is(err, errdef.ErrDigestMismatch) || errors.Is(err, errdef.ErrSizeMismatch) {
			return err // the blob itself is wrong, whatever it decompresses to
		}
		return fmt.Errorf("decompress layer: %w", err)
	}
	if got := dg.Digest(); got != want {
		return fmt.Errorf("%w: uncompressed layer hashes to %s, config rootfs.diff_ids says %s", errdef.ErrDigestMismatch, got, want)
	}
	return nil
}

// count records a checked blob.
func (v *validator) count(d ocispec.Descriptor, path []Step) {
	v.res.Blobs++
	v.res.Bytes += d.Size
	v.progress(path)
}

func (v *validator) progress(path []Step) {
	if v.opts.Progress != nil {
		v.opts.Progress(path)
	}
}

// ctxReader stops a long read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
