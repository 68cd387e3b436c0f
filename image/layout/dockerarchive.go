package layout

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// maxDockerArchiveEntries bounds the entries of a docker-archive (an inode bomb is refused).
const maxDockerArchiveEntries = 1 << 20

// dockerArchiveImage is one entry of a docker-archive's manifest.json (`docker save`'s format).
type dockerArchiveImage struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// OpenDockerArchive opens a docker-archive file — what `docker save`, `podman save` and
// skopeo's docker-archive transport write: manifest.json naming, per image, a config file, its
// layer files and its RepoTags — as a layout, read-only: every regular file is stored by digest
// (names never become paths), and each image gets a Docker schema 2 manifest built from its
// config and layers (uncompressed, gzip or zstd, by magic), named in index.json by each of its
// RepoTags in the normalized form name(tag) returns (or untagged). Links between entries (older
// docker save shares layers that way) must stay inside the archive. Save refuses: it is an
// import, not an archive wharf writes.
func OpenDockerArchive(ctx context.Context, file string, tempDir string, name func(repoTag string) (string, error)) (*Archive, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("open docker-archive %s: %w", file, err)
	}
	f, err := os.Open(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %w", errdef.ErrNotFound, err)
		}
		return nil, fmt.Errorf("open docker-archive: %w", err)
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(tempDir, "wharf-docker-archive-")
	if err != nil {
		return nil, fmt.Errorf("open docker-archive %s: %w", abs, err)
	}
	a := &Archive{path: abs, tmp: tmp, readOnly: true}
	if a.Layout, err = Init(filepath.Join(tmp, "layout")); err == nil {
		err = importDockerArchive(ctx, f, a.Layout, name)
	}
	if err != nil {
		if a.Layout != nil {
			a.Layout.Close()
		}
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("open docker-archive %s: %w", abs, err)
	}
	return a, nil
}

// importDockerArchive stores the archive read from r in l: its files by digest, then a
// manifest per image of its manifest.json, named by its RepoTags.
func importDockerArchive(ctx context.Context, r io.Reader, l *Layout, name func(string) (string, error)) error {
	a, err := readDockerArchive(ctx, r, l)
	if err != nil {
		return err
	}
	images, err := a.images()
	if err != nil {
		return err
	}
	for i, img := range images {
		md, err := a.storeManifest(ctx, l, i, img)
		if err != nil {
			return err
		}
		if err := tagRepoTags(ctx, l, md, i, img.RepoTags, name); err != nil {
			return err
		}
	}
	return nil
}

// dockerArchive is what a docker-archive's tar holds once its files are stored.
type dockerArchive struct {
	files    map[string]ocispec.Descriptor // archive path → stored blob
	links    map[string]string             // archive path → the path it links to
	manifest []byte                        // manifest.json
}

// readDockerArchive reads the tar: every regular file is stored in l by digest (names never
// become paths), links are remembered, manifest.json is kept (capped); anything else is
// refused.
func readDockerArchive(ctx context.Context, r io.Reader, l *Layout) (*dockerArchive, error) {
	a := &dockerArchive{files: map[string]ocispec.Descriptor{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n > maxDockerArchiveEntries {
			return nil, fmt.Errorf("%w: more than %d entries", errdef.ErrTooLarge, maxDockerArchiveEntries)
		}
		h, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		if err := a.entry(ctx, l, tr, h); err != nil {
			return nil, err
		}
	}
}

// entry takes one tar entry h (its content in tr).
func (a *dockerArchive) entry(ctx context.Context, l *Layout, tr io.Reader, h *tar.Header) error {
	p := path.Clean(strings.TrimPrefix(h.Name, "./"))
	switch h.Typeflag {
	case tar.TypeDir:
		return nil
	case tar.TypeSymlink, tar.TypeLink:
		target := h.Linkname
		if h.Typeflag == tar.TypeSymlink {
			target = path.Join(path.Dir(p), target)
		}
		a.links[p] = path.Clean(target)
		return nil
	case tar.TypeReg:
	default:
		return fmt.Errorf("%s: %w: a %c entry has no place in a docker-archive", h.Name, errdef.ErrUnsafePath, h.Typeflag)
	}
	if p == "manifest.json" {
		var err error
		if a.manifest, err = io.ReadAll(io.LimitReader(tr, content.MaxDocumentSize+1)); err != nil {
			return fmt.Errorf("read manifest.json: %w", err)
		}
		if len(a.manifest) > content.MaxDocumentSize {
			return fmt.Errorf("manifest.json: %w: over %d bytes", errdef.ErrTooLarge, content.MaxDocumentSize)
		}
		return nil
	}
	d, err := storeBlob(ctx, l, tr, h.Size)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	a.files[p] = d
	return nil
}

// images decodes manifest.json: at least one image.
func (a *dockerArchive) images() ([]dockerArchiveImage, error) {
	if a.manifest == nil {
		return nil, fmt.Errorf("%w: no manifest.json (not a docker-archive)", errdef.ErrNotFound)
	}
	var images []dockerArchiveImage
	if err := json.Unmarshal(a.manifest, &images); err != nil {
		return nil, fmt.Errorf("manifest.json: %w: %v", errdef.ErrInvalidArgument, err)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("manifest.json: %w: no image", errdef.ErrNotFound)
	}
	return images, nil
}

// lookup returns the stored file an archive path names, following links inside the archive
// (at most 8).
func (a *dockerArchive) lookup(p string) (ocispec.Descriptor, error) {
	p = path.Clean(p)
	for hops := 0; hops < 8; hops++ {
		if d, ok := a.files[p]; ok {
			return d, nil
		}
		t, ok := a.links[p]
		if !ok {
			break
		}
		p = t
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: %q is not a file of the archive", errdef.ErrNotFound, p)
}

// storeManifest builds the Docker schema 2 manifest of the archive's image i (its config and
// layers, compression by magic), validates it with its config as one image, and stores it.
func (a *dockerArchive) storeManifest(ctx context.Context, l *Layout, i int, img dockerArchiveImage) (ocispec.Descriptor, error) {
	cfg, err := a.lookup(img.Config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d] config: %w", i, err)
	}
	cfg.MediaType = image.MediaTypeDockerConfig
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: image.MediaTypeDockerManifest, Config: cfg}
	for _, lp := range img.Layers {
		d, err := a.lookup(lp)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d] layer: %w", i, err)
		}
		if d.MediaType, err = sniffLayer(ctx, l, d); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d] layer %s: %w", i, lp, err)
		}
		m.Layers = append(m.Layers, d)
	}
	cb, err := content.ReadAll(ctx, l, cfg, 0)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d] config %s: %w", i, img.Config, err)
	}
	ic, err := image.ParseConfig(cfg, cb)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d] config %s: %w", i, img.Config, err)
	}
	if err := image.ValidateImage(&m, ic); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d]: %w", i, err)
	}
	b, err := json.Marshal(&m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if _, err := image.ParseManifest(md, b); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json[%d]: %w", i, err)
	}
	if err := l.Push(ctx, md, strings.NewReader(string(b))); err != nil {
		return ocispec.Descriptor{}, err
	}
	return md, nil
}

// tagRepoTags names the manifest md of the archive's image i by each of its RepoTags, as
// name normalises them (untagged when it has none).
func tagRepoTags(ctx context.Context, l *Layout, md ocispec.Descriptor, i int, repoTags []string, name func(string) (string, error)) error {
	if len(repoTags) == 0 {
		return l.Tag(ctx, md, md.Digest.String())
	}
	for _, rt := range repoTags {
		tag, err := name(rt)
		if err != nil {
			return fmt.Errorf("manifest.json[%d] RepoTags %q: %w", i, rt, err)
		}
		if err := l.Tag(ctx, md, tag); err != nil {
			return err
		}
	}
	return nil
}

// storeBlob stores size bytes of r in l under their digest.
func storeBlob(ctx context.Context, l *Layout, r io.Reader, size int64) (ocispec.Descriptor, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	w, err := l.Writer(ctx, "docker-archive-"+hex.EncodeToString(rnd[:]))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if _, err := io.CopyN(w, r, size); err != nil {
		w.Cancel(ctx)
		return ocispec.Descriptor{}, fmt.Errorf("read: %w", err)
	}
	d := ocispec.Descriptor{Digest: w.Digest(), Size: size}
	if err := w.Commit(ctx, size, d.Digest); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}

// sniffLayer names a layer's media type by its first bytes.
func sniffLayer(ctx context.Context, l *Layout, d ocispec.Descriptor) (string, error) {
	rc, err := l.Fetch(ctx, d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var magic [4]byte
	n, _ := io.ReadFull(rc, magic[:])
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return image.MediaTypeDockerLayerGzip, nil
	case n == 4 && magic == [4]byte{0x28, 0xb5, 0x2f, 0xfd}:
		return image.MediaTypeDockerLayerZstd, nil
	}
	return image.MediaTypeDockerLayer, nil
}
