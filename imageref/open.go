package imageref

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/client"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/layout"
)

// AmbiguousError is returned by Resolve when a name without tag or digest designates a layout
// holding more than one image (or none). It wraps errdef.ErrInvalidArgument (several images)
// or errdef.ErrNotFound (none).
type AmbiguousError struct {
	Ref  Reference
	Tags []string // the tags (or digests of untagged entries) to choose from
}

func (e *AmbiguousError) Error() string {
	if len(e.Tags) == 0 {
		return fmt.Sprintf("resolve %s: %s holds no image: not found", e.Ref, e.Ref.Path)
	}
	return fmt.Sprintf("resolve %s: %s holds %d images; name one as %s:%s:TAG (%s)", e.Ref, e.Ref.Path, len(e.Tags),
		e.Ref.Transport, e.Ref.Path, strings.Join(e.Tags, ", "))
}

func (e *AmbiguousError) Unwrap() error {
	if len(e.Tags) == 0 {
		return errdef.ErrNotFound
	}
	return errdef.ErrInvalidArgument
}

// Handle is an opened image name. Layout is the layout of oci: (the directory itself) and
// oci-archive: (an extracted copy; writes reach the file only through Save); for docker:
// Layout is nil and Repo is the registry repository. Target() is whichever holds the image.
// (Layout is a named field, not embedded, so that a docker: handle cannot be passed where a
// layout is expected and panic on its nil layout.)
type Handle struct {
	Layout  *layout.Layout
	Repo    *client.Repository
	Ref     Reference
	archive *layout.Archive
}

// Target is what the handle reads and writes images through: the layout, or the registry
// repository (whose optional abilities — referrers, mount, delete — type assertions find).
func (h *Handle) Target() content.Target {
	if h.Repo != nil {
		return h.Repo
	}
	return h.Layout
}

// OpenOptions tunes Open.
type OpenOptions struct {
	// Create makes a missing layout (or archive) for writing: oci: gets an empty layout in DIR,
	// oci-archive: an empty layout that Save writes to FILE.
	Create bool
	// TempDir is where archives are extracted (default os.TempDir()).
	TempDir string
	// Registry opens docker: names; without it they are refused (ErrUnsupported), for the
	// commands that work on layouts only.
	Registry *client.Client
}

// Open opens the layout or archive that r names. A missing directory or file wraps
// errdef.ErrNotFound (unless opts.Create). The caller must Close the handle.
func Open(ctx context.Context, r Reference, opts OpenOptions) (*Handle, error) {
	h := &Handle{Ref: r}
	switch r.Transport {
	case OCI:
		var err error
		if opts.Create {
			h.Layout, err = layout.Init(r.Path)
		} else {
			if _, serr := os.Lstat(r.Path); errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("open layout %s: %w", r.Path, errdef.ErrNotFound)
			}
			h.Layout, err = layout.Open(r.Path)
		}
		if err != nil {
			return nil, err
		}
	case OCIArchive:
		a, err := layout.OpenArchive(ctx, r.Path, layout.ArchiveOptions{Create: opts.Create, TempDir: opts.TempDir})
		if err != nil {
			return nil, err
		}
		h.archive, h.Layout = a, a.Layout
	case DockerArchive:
		if opts.Create {
			return nil, fmt.Errorf("open %s: %w: docker-archive is read here, not written (write an oci-archive: podman and docker load it)", r, errdef.ErrUnsupported)
		}
		a, err := layout.OpenDockerArchive(ctx, r.Path, opts.TempDir, NormalizeRepoTag)
		if err != nil {
			return nil, err
		}
		h.archive, h.Layout = a, a.Layout
	case Docker:
		if opts.Registry == nil {
			return nil, fmt.Errorf("open %s: %w: this command works on layouts and archives only (copy the image into one first)", r, errdef.ErrUnsupported)
		}
		repo, err := opts.Registry.Repository(r.Domain, r.Repository)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", r, err)
		}
		h.Repo = repo
	default:
		return nil, fmt.Errorf("open %s: %w: transport %q", r, errdef.ErrUnsupported, r.Transport)
	}
	return h, nil
}

// Save writes the changes made through the handle back to an archive file; for a layout
// directory, where every change is already durable, it does nothing.
func (h *Handle) Save(ctx context.Context) error {
	if h.archive == nil || h.Repo != nil {
		return nil
	}
	return h.archive.Save(ctx)
}

// Close releases the layout (and removes an archive's extracted copy).
func (h *Handle) Close() error {
	if h.Repo != nil {
		return nil
	}
	if h.archive != nil {
		return h.archive.Close()
	}
	return h.Layout.Close()
}

// ResolveImage resolves h.Ref in the opened layout (see Resolve).
func (h *Handle) ResolveImage(ctx context.Context) (ocispec.Descriptor, error) {
	if h.Repo != nil {
		return h.Repo.Resolve(ctx, h.Ref.Ref())
	}
	return Resolve(ctx, h.Layout, h.Ref)
}

// Resolve finds the root descriptor r names in l: its tag, its digest, or — when r has
// neither — the only entry of index.json (as containers-transports(5) says of oci:, "the
// directory must contain exactly one image"); otherwise an *AmbiguousError.
func Resolve(ctx context.Context, l *layout.Layout, r Reference) (ocispec.Descriptor, error) {
	if ref := r.Ref(); ref != "" {
		return l.Resolve(ctx, ref)
	}
	entries, err := l.List(ctx)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", r, err)
	}
	if len(entries) > 0 {
		only := entries[0].Descriptor.Digest
		for _, e := range entries[1:] {
			if e.Descriptor.Digest != only {
				only = ""
				break
			}
		}
		if only != "" {
			return l.Resolve(ctx, string(only))
		}
	}
	amb := &AmbiguousError{Ref: r}
	for _, e := range entries {
		if e.Name != "" {
			amb.Tags = append(amb.Tags, e.Name)
		} else {
			amb.Tags = append(amb.Tags, "@"+string(e.Descriptor.Digest))
		}
	}
	return ocispec.Descriptor{}, amb
}

// MountFrom returns the Options.MountFrom of image/copy for a copy from src to dst: on one
// registry, from one repository to another, a blob is mounted from src's repository instead of
// copied (a registry's cross-repository mount). It returns nil for any other pair.
func MountFrom(src, dst *Handle) func(context.Context, ocispec.Descriptor) ([]string, error) {
	if src.Repo == nil || dst.Repo == nil || src.Repo.Domain != dst.Repo.Domain || src.Repo.Name == dst.Repo.Name {
		return nil
	}
	from := src.Repo.Name
	return func(context.Context, ocispec.Descriptor) ([]string, error) { return []string{from}, nil }
}

// Tags lists the tags of what the handle names: a registry repository's, a layout's or an
// archive's (content.TagLister), each once, sorted.
func (h *Handle) Tags(ctx context.Context) ([]string, error) {
	tl, ok := h.Target().(content.TagLister)
	if !ok {
		return nil, fmt.Errorf("list tags of %s: %w", h.Ref, errdef.ErrUnsupported)
	}
	tags, err := tl.Tags(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", h.Ref, err)
	}
	return tags, nil
}

// RepoTags is what skopeo inspect calls RepoTags for the image dg: every tag of a registry
// repository (as skopeo lists them: resolving each would cost a request per tag), the tags of
// a layout or archive that name dg.
func (h *Handle) RepoTags(ctx context.Context, dg digest.Digest) ([]string, error) {
	tags, err := h.Tags(ctx)
	if err != nil || h.Repo != nil {
		return tags, err
	}
	entries, err := h.Layout.List(ctx)
	if err != nil {
		return nil, err
	}
	named := []string{}
	for _, t := range tags {
		for _, e := range entries {
			if e.Name == t && e.Descriptor.Digest == dg {
				named = append(named, t)
				break
			}
		}
	}
	return named, nil
}
