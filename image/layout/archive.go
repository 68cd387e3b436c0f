package layout

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// ArchiveOptions tunes OpenArchive.
type ArchiveOptions struct {
	// Create makes OpenArchive start an empty layout when the file does not exist (it is
	// written by Save).
	Create bool
	// TempDir is where the archive is extracted (default os.TempDir()).
	TempDir string
}

// Archive is an oci-archive file (a tar of an image layout, as skopeo's oci-archive transport
// reads and writes it) opened as a Layout: the archive is extracted to a private temporary
// directory, used there like any layout (it is a content.Target), and written back by Save.
// Close removes the temporary directory; changes not saved are lost.
type Archive struct {
	*Layout
	path     string
	tmp      string
	readOnly bool // a docker-archive: imported, never written back
}

// Path returns the archive file's path.
func (a *Archive) Path() string { return a.path }

// OpenArchive extracts the oci-archive file at file and opens it. The tar (optionally gzip
// compressed) may hold only directories and regular files; entry names that are absolute,
// climb with "..", or are links, devices or fifos are refused, and only oci-layout, index.json
// and blobs/<alg>/<encoded> are extracted. The extracted layout is then opened with Open, so
// every layout check applies.
func OpenArchive(ctx context.Context, file string, opts ArchiveOptions) (*Archive, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", file, err)
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "wharf-oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("open archive %s: %w", abs, err)
	}
	a := &Archive{path: abs, tmp: tmp}
	fail := func(err error) (*Archive, error) {
		os.RemoveAll(tmp)
		return nil, err
	}
	dir := filepath.Join(tmp, "layout")
	f, err := os.Open(abs)
	switch {
	case err == nil:
		err = Extract(ctx, f, dir)
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("open archive %s: %w", abs, err))
		}
		if a.Layout, err = Open(dir); err != nil {
			return fail(fmt.Errorf("open archive %s: %w", abs, err))
		}
	case errors.Is(err, os.ErrNotExist) && opts.Create:
		if a.Layout, err = Init(dir); err != nil {
			return fail(fmt.Errorf("create archive %s: %w", abs, err))
		}
	default:
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%w: %w", errdef.ErrNotFound, err)
		}
		return fail(fmt.Errorf("open archive: %w", err))
	}
	return a, nil
}

// Save writes the layout back to the archive file, atomically (a temporary file next to it,
// fsync, rename).
func (a *Archive) Save(ctx context.Context) error {
	if a.readOnly {
		return fmt.Errorf("save %s: %w: docker-archive is read-only here (write an oci-archive)", a.path, errdef.ErrUnsupported)
	}
	dir := filepath.Dir(a.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(a.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := WriteArchive(ctx, a.Layout, bw); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	if err := os.Rename(f.Name(), a.path); err != nil {
		return fmt.Errorf("save archive %s: %w", a.path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Close removes the extracted copy.
func (a *Archive) Close() error {
	var err error
	if a.Layout != nil {
		err = a.Layout.Close()
	}
	return errors.Join(err, os.RemoveAll(a.tmp))
}

// WriteArchive writes l as a deterministic tar: oci-layout, index.json, then the blobs
// directories and every stored blob in digest order; owner 0:0, modification time zero, modes
// 0755 and 0444/0644. Lock files and ingests are left out.
func WriteArchive(ctx context.Context, l *Layout, w io.Writer) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	dfd, err := openDir(l.root)
	if err != nil {
		return err
	}
	marker, err := readCapped(dfd, l.root, LayoutFile, maxLayoutFile)
	if err == nil {
		var idx []byte
		idx, err = readCapped(dfd, l.root, IndexFile, content.MaxDocumentSize)
		if err == nil {
			_, err = parseIndexJSON(idx)
		}
		for _, f := range []struct {
			name string
			b    []byte
		}{{LayoutFile, marker}, {IndexFile, idx}} {
			if err != nil {
				break
			}
			if err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Size: int64(len(f.b)), Mode: 0o644, ModTime: epoch}); err == nil {
				_, err = tw.Write(f.b)
			}
		}
	}
	closeErr := closeFD(dfd)
	if err != nil {
		return err
	}
	if closeErr != nil {
		return closeErr
	}
	var blobs []content.Info
	if err := l.store.Walk(ctx, func(i content.Info) error { blobs = append(blobs, i); return nil }); err != nil {
		return err
	}
	slices.SortFunc(blobs, func(a, b content.Info) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	dirs := []string{BlobsDir + "/"}
	for _, b := range blobs {
		d := BlobsDir + "/" + b.Digest.Algorithm().String() + "/"
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	for _, b := range blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		desc := descOf(b)
		rc, err := l.store.Fetch(ctx, desc)
		if err != nil {
			return err
		}
		name := BlobsDir + "/" + b.Digest.Algorithm().String() + "/" + b.Digest.Encoded()
		err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: b.Size, Mode: 0o444, ModTime: epoch})
		if err == nil {
			// A blob is verified on its way into the archive: a corrupt layout makes no archive.
			_, err = io.Copy(tw, content.NewVerifyReader(rc, desc))
		}
		rc.Close()
		if err != nil {
			return fmt.Errorf("archive blob %s: %w", b.Digest, err)
		}
	}
	return tw.Close()
}

// Extract unpacks an oci-archive stream (tar, or gzip-compressed tar) into dir, which must
// not exist yet or be empty. See OpenArchive for what is refused.
func Extract(ctx context.Context, r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("extract: read tar: %w", err)
		}
		name, err := archiveName(h.Name)
		if err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeDir:
			if name == "." {
				continue
			}
			if name != BlobsDir && !(path.Dir(name) == BlobsDir && isAlgDir(path.Base(name))) {
				continue // not part of a layout: ignored
			}
			if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(name)), 0o755); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			if err := extractFile(tr, h, dir, name); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		default:
			kind := map[byte]string{tar.TypeSymlink: "a symlink", tar.TypeLink: "a hard link", tar.TypeChar: "a character device",
				tar.TypeBlock: "a block device", tar.TypeFifo: "a fifo"}[h.Typeflag]
			if kind == "" {
				kind = fmt.Sprintf("of type %q", h.Typeflag)
			}
			return fmt.Errorf("extract %s: %w: entry is %s; an oci-archive holds only directories and regular files", h.Name, errdef.ErrUnsafePath, kind)
		}
	}
}

func isAlgDir(s string) bool { return s == "sha256" || s == "sha512" }

// archiveName cleans a tar entry name: relative, no "..", no empty components.
func archiveName(raw string) (string, error) {
	n := strings.TrimPrefix(raw, "./")
	if strings.HasPrefix(n, "/") || strings.Contains(n, "\x00") || strings.Contains(n, "\\") {
		return "", fmt.Errorf("entry %q: %w: absolute or malformed name", raw, errdef.ErrUnsafePath)
	}
	for _, c := range strings.Split(strings.TrimSuffix(n, "/"), "/") {
		if c == ".." {
			return "", fmt.Errorf("entry %q: %w: name climbs out of the archive", raw, errdef.ErrUnsafePath)
		}
	}
	c := path.Clean(n)
	if c == "" {
		c = "."
	}
	return c, nil
}

// extractFile writes one regular file of the layout; other files are skipped.
func extractFile(tr *tar.Reader, h *tar.Header, dir, name string) error {
	limit := int64(-1)
	switch {
	case name == LayoutFile:
		limit = maxLayoutFile
	case name == IndexFile:
		limit = content.MaxDocumentSize
	case path.Dir(path.Dir(name)) == BlobsDir && isAlgDir(path.Base(path.Dir(name))):
		d := digest.NewDigestFromEncoded(digest.Algorithm(path.Base(path.Dir(name))), path.Base(name))
		if err := content.ValidateDigest(d); err != nil {
			return fmt.Errorf("blob name: %w", err)
		}
	default:
		return nil // not part of a layout: ignored
	}
	if h.Size < 0 || (limit >= 0 && h.Size > limit) {
		return fmt.Errorf("%w: %d bytes is over the %d byte limit", errdef.ErrTooLarge, h.Size, limit)
	}
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	// O_EXCL|O_NOFOLLOW: a duplicate entry is refused, nothing already there is followed.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: duplicate entry", errdef.ErrInvalidArgument)
		}
		return err
	}
	n, err := io.Copy(f, tr)
	if err == nil && n != h.Size {
		err = fmt.Errorf("%w: entry ended after %d of %d bytes", errdef.ErrSizeMismatch, n, h.Size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
