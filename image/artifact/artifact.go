// Package artifact stores files as OCI artifacts and gets them back, as oras does: an image
// manifest (image-spec 1.1) whose artifactType says what it holds, whose config is the empty
// descriptor and whose layers are the files, each named by its
// org.opencontainers.image.title annotation; with a subject, the artifact refers to another
// manifest (a signature, an SBOM…) and is listed by the referrers API.
package artifact

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/internal/rootfs"
)

const (
	// DefaultArtifactType is the artifactType of an artifact pushed without one (as oras).
	DefaultArtifactType = "application/vnd.unknown.artifact.v1"
	// DefaultFileMediaType is a file's layer media type when none is given (as oras).
	DefaultFileMediaType = "application/vnd.oci.image.layer.v1.tar"
)

// File is one file to store: a path on this machine and its layer media type ("" for the
// default). Its title is the path's base name.
type File struct {
	Path      string
	MediaType string
}

// ParseFile reads a command-line FILE[:MEDIATYPE] (the part after the last ':' is a media type
// when it has a '/', as oras reads it).
func ParseFile(arg string) File {
	if i := strings.LastIndexByte(arg, ':'); i > 0 && strings.Contains(arg[i+1:], "/") {
		return File{Path: arg[:i], MediaType: arg[i+1:]}
	}
	return File{Path: arg}
}

// Options describe the artifact manifest.
type Options struct {
	ArtifactType string              // default DefaultArtifactType
	Subject      *ocispec.Descriptor // the manifest it refers to, if any
	Annotations  map[string]string   // manifest annotations
	// Created goes into org.opencontainers.image.created unless Annotations sets it; zero
	// means now (SOURCE_DATE_EPOCH is the caller's to apply).
	Created time.Time
	// ListUntagged adds an artifact pushed without a tag to the target's list of roots (an
	// image layout's index.json, by digest), where tools that read only index.json (oras) find
	// it. Registries list referrers themselves.
	ListUntagged bool
}

// Push stores files as an artifact in t and returns its manifest descriptor: each file is read
// twice (to hash it, then to push it, verified), the empty config is pushed, then the manifest
// — by tag when tag is not "" (the registry's PUT by tag, or push then tag). With no file the
// single layer is the empty descriptor, as image-spec 1.1 suggests for portability.
func Push(ctx context.Context, t content.Target, files []File, o Options, tag string) (ocispec.Descriptor, error) {
	m := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: o.ArtifactType,
		Config:       ocispec.DescriptorEmptyJSON,
		Subject:      o.Subject,
		Annotations:  map[string]string{},
	}
	if m.ArtifactType == "" {
		m.ArtifactType = DefaultArtifactType
	}
	if !image.ValidMediaType(m.ArtifactType) {
		return ocispec.Descriptor{}, fmt.Errorf("artifact type %q: %w: not a media type (RFC 6838)", m.ArtifactType, errdef.ErrInvalidArgument)
	}
	for k, v := range o.Annotations {
		m.Annotations[k] = v
	}
	if _, ok := m.Annotations[ocispec.AnnotationCreated]; !ok {
		created := o.Created
		if created.IsZero() {
			created = time.Now()
		}
		m.Annotations[ocispec.AnnotationCreated] = created.UTC().Format(time.RFC3339)
	}
	titles := map[string]string{}
	for _, f := range files {
		d, err := pushFile(ctx, t, f)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		title := d.Annotations[ocispec.AnnotationTitle]
		if prev, dup := titles[title]; dup {
			return ocispec.Descriptor{}, fmt.Errorf("%s and %s: %w: both would be named %q", prev, f.Path, errdef.ErrInvalidArgument, title)
		}
		titles[title] = f.Path
		m.Layers = append(m.Layers, d)
	}
	empty := ocispec.DescriptorEmptyJSON
	if err := t.Push(ctx, empty, bytes.NewReader(empty.Data)); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push the empty config: %w", err)
	}
	if len(m.Layers) == 0 {
		m.Layers = []ocispec.Descriptor{empty}
	}
	b, err := json.Marshal(&m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: m.MediaType, ArtifactType: m.ArtifactType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if _, err := image.ParseManifest(desc, b); err != nil { // what we push must be valid
		return ocispec.Descriptor{}, err
	}
	if tp, ok := t.(content.TagPusher); ok && tag != "" {
		err = tp.PushTag(ctx, desc, bytes.NewReader(b), tag)
	} else {
		err = t.Push(ctx, desc, bytes.NewReader(b))
		switch {
		case err != nil:
		case tag != "":
			err = t.Tag(ctx, desc, tag)
		case o.ListUntagged:
			err = t.Tag(ctx, desc, desc.Digest.String())
		}
	}
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push the artifact manifest %s: %w", desc.Digest, err)
	}
	return desc, nil
}

// pushFile pushes one regular file as a layer titled with its base name.
func pushFile(ctx context.Context, t content.Pusher, f File) (ocispec.Descriptor, error) {
	mt := f.MediaType
	if mt == "" {
		mt = DefaultFileMediaType
	}
	if !image.ValidMediaType(mt) {
		return ocispec.Descriptor{}, fmt.Errorf("%s: media type %q: %w: not a media type (RFC 6838)", f.Path, mt, errdef.ErrInvalidArgument)
	}
	open := func() (*os.File, error) {
		fh, err := os.Open(f.Path)
		if err != nil {
			return nil, err
		}
		st, err := fh.Stat()
		if err == nil && !st.Mode().IsRegular() {
			err = fmt.Errorf("%s: %w: not a regular file", f.Path, errdef.ErrInvalidArgument)
		}
		if err != nil {
			fh.Close()
			return nil, err
		}
		return fh, nil
	}
	fh, err := open()
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, fh)
	fh.Close()
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("read %s: %w", f.Path, err)
	}
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.NewDigest(digest.SHA256, h), Size: n,
		Annotations: map[string]string{ocispec.AnnotationTitle: filepath.Base(f.Path)}}
	if fh, err = open(); err != nil {
		return ocispec.Descriptor{}, err
	}
	defer fh.Close()
	if err := t.Push(ctx, d, fh); err != nil { // a file changed in between is a digest mismatch
		return ocispec.Descriptor{}, fmt.Errorf("push %s: %w", f.Path, err)
	}
	return d, nil
}

// Pulled is one file Pull wrote.
type Pulled struct {
	Path string // inside the output directory
	ocispec.Descriptor
}

// Pull writes the layers of the artifact (or image) manifest desc that carry a title into dir,
// each under its title, and returns them. Every blob is verified against its descriptor before
// it is renamed into place. A title must be a relative path that stays inside dir: absolute
// titles and ".." components are refused, and the path is resolved beneath dir without following
// symlinks out of it; a file already there is replaced, a directory is not. Layers without a
// title are skipped (as oras does); none having one is an error.
func Pull(ctx context.Context, f content.Fetcher, desc ocispec.Descriptor, dir string) ([]Pulled, error) {
	b, err := content.ReadAll(ctx, f, desc, 0)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", desc.Digest, err)
	}
	m, err := image.ParseManifest(desc, b)
	if err != nil {
		return nil, err
	}
	var todo []Pulled
	seen := map[string]bool{}
	for _, l := range m.Layers {
		title, ok := l.Annotations[ocispec.AnnotationTitle]
		if !ok {
			continue
		}
		p, err := cleanTitle(title)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if seen[p] {
			return nil, fmt.Errorf("layer %s: %w: title %q names a file another layer already names", l.Digest, errdef.ErrInvalidArgument, title)
		}
		seen[p] = true
		todo = append(todo, Pulled{Path: p, Descriptor: l})
	}
	if len(todo) == 0 {
		return nil, fmt.Errorf("%s: %w: no layer has a title (%s) to name a file", desc.Digest, errdef.ErrNotFound, ocispec.AnnotationTitle)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	for _, p := range todo {
		if err := pullOne(ctx, f, root, p); err != nil {
			return nil, err
		}
	}
	return todo, nil
}

// cleanTitle turns a layer title into a relative path, refusing what would leave the directory.
func cleanTitle(title string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: title %q %s", errdef.ErrUnsafePath, title, why)
	}
	switch {
	case title == "":
		return bad("is empty")
	case strings.ContainsRune(title, 0):
		return bad("holds a NUL byte")
	case strings.HasPrefix(title, "/"):
		return bad("is an absolute path")
	}
	for _, c := range strings.Split(title, "/") {
		if c == ".." {
			return bad("climbs out of the directory")
		}
	}
	p := path.Clean(title)
	if p == "." {
		return bad("names the directory itself")
	}
	return p, nil
}

// pullOne writes one verified blob to a temporary file beside its destination (made inside the
// root) and renames it over the destination.
func pullOne(ctx context.Context, f content.Fetcher, root *rootfs.Root, p Pulled) error {
	parent, base := path.Split(p.Path)
	dfd, err := root.MkdirAllFD(strings.TrimSuffix(parent, "/"), 0o755)
	if err != nil {
		return fmt.Errorf("create the directory of %s: %w", p.Path, err)
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("write %s: %w: a directory is there", p.Path, errdef.ErrAlreadyExists)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + base + ".wharf-pull-" + hex.EncodeToString(rnd[:])
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", p.Path, err)
	}
	out := os.NewFile(uintptr(fd), tmp)
	ok := false
	defer func() {
		if !ok {
			out.Close()
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	rc, err := f.Fetch(ctx, p.Descriptor)
	if err != nil {
		return fmt.Errorf("fetch %s (%s): %w", p.Digest, p.Path, err)
	}
	_, err = io.Copy(out, content.NewVerifyReader(rc, p.Descriptor))
	rc.Close()
	if err != nil {
		return fmt.Errorf("fetch %s (%s): %w", p.Digest, p.Path, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		return fmt.Errorf("write %s: %w", p.Path, err)
	}
	ok = true
	return nil
}

// Referrers lists the manifests whose subject is desc, in t (a layout or a registry
// repository), optionally only those of artifactType.
func Referrers(ctx context.Context, t content.Target, desc ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	rl, ok := t.(content.ReferrerLister)
	if !ok {
		return nil, fmt.Errorf("list referrers of %s: %w", desc.Digest, errdef.ErrUnsupported)
	}
	refs, err := rl.Referrers(ctx, desc, artifactType)
	if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return nil, err
	}
	return refs, nil
}
