package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/layer"
	"github.com/wharfoci/wharf/internal/rootfs"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress returns the uncompressed stream of r, the compression detected by its magic
// bytes (gzip, bzip2, xz, zstd; anything else is read as it is).
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return zr, nil
	case bytes.HasPrefix(head, magicBzip2):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, magicXz):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(xr), nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// isArchive reports whether the file item is a tar archive ADD extracts: its (decompressed)
// content starts with a valid tar header, as Docker decides. An empty archive is not one
// (it is copied as a file).
func isArchive(it *Item) (bool, error) {
	e := &it.Entries[0]
	if !e.IsRegular() || e.Size == 0 {
		return false, nil
	}
	f, err := it.Tree.OpenFile(it.Path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	dr, err := decompress(f)
	if err != nil {
		return false, nil
	}
	defer dr.Close()
	_, err = tar.NewReader(dr).Next()
	return err == nil, nil
}

// extract applies the archive item to the directory destRel of the root, confined to that
// directory: a name that climbs out of it with ".." and a hardlink to outside it are
// refused, symlinks in it (and in the archive) resolve inside it, whiteout names (.wh.*) are
// left out (an image layer could not hold them as files), the archive's owners, modes and
// times are kept. The writing is image/layer's applier, the one `wharf unpack` uses.
func (c *copier) extract(it *Item, destRel string) error {
	dir, err := c.root.MkdirAllFollow(destRel, 0755)
	if err != nil {
		return err
	}
	defer dir.Close()
	sub, err := rootfs.Open(dir.Name())
	if err != nil {
		return err
	}
	defer sub.Close()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &a); err != nil {
		return err
	}
	if err := unix.Fstat(sub.FD(), &b); err != nil {
		return err
	}
	if a.Dev != b.Dev || a.Ino != b.Ino {
		return fmt.Errorf("%w: destination %s changed while it was opened", errdef.ErrUnsafePath, destRel)
	}
	f, err := it.Tree.OpenFile(it.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	dr, err := decompress(f)
	if err != nil {
		return fmt.Errorf("%w: %v", errdef.ErrInvalidArgument, err)
	}
	defer dr.Close()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := filterArchive(dr, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	_, aerr := layer.Apply(c.ctx, sub, pr, ocispec.MediaTypeImageLayer, layer.Options{})
	pr.CloseWithError(errors.New("extraction stopped"))
	ferr := <-done
	if ferr != nil && !errors.Is(ferr, io.ErrClosedPipe) {
		return ferr
	}
	return aerr
}

// escapes reports whether the archive name climbs out of the extraction directory.
func escapes(name string) bool {
	c := path.Clean(strings.TrimPrefix(name, "/"))
	return c == ".." || strings.HasPrefix(c, "../")
}

// filterArchive copies the tar stream r to w, refusing entries that climb out of the
// destination and leaving out the root entry and whiteout names.
func filterArchive(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return fmt.Errorf("%w: read archive: %v", errdef.ErrInvalidArgument, err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		if strings.IndexByte(hdr.Name, 0) >= 0 {
			return fmt.Errorf("%w: archive entry name holds a NUL byte", errdef.ErrInvalidArgument)
		}
		if escapes(hdr.Name) {
			return fmt.Errorf("%w: archive entry %q leads outside the destination", errdef.ErrUnsafePath, hdr.Name)
		}
		if hdr.Typeflag == tar.TypeLink && (escapes(hdr.Linkname) || path.IsAbs(hdr.Linkname) && escapes(hdr.Linkname[1:])) {
			return fmt.Errorf("%w: archive hardlink %q → %q leads outside the destination", errdef.ErrUnsafePath, hdr.Name, hdr.Linkname)
		}
		c := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		if c == "." {
			continue // the destination keeps its own attributes
		}
		if strings.HasPrefix(path.Base(c), ".wh.") {
			continue
		}
		hdr.Name = c
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if !canChown {
			// as the copier: a process that may not give files away keeps them
			hdr.Uid, hdr.Gid = os.Geteuid(), os.Getegid()
		}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("rewrite archive entry %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeRegA {
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("%w: read archive entry %q: %v", errdef.ErrInvalidArgument, hdr.Name, err)
			}
		}
	}
}

// Fetcher downloads ADD's http(s) sources.
type Fetcher struct {
	// Client makes the requests; nil: http.DefaultClient.
	Client *http.Client
	// TempDir is where downloads are kept until the set is closed; "": os.TempDir().
	TempDir string
	// MaxSize caps one download; 0: 8 GiB.
	MaxSize int64
}

// Download is one fetched ADD source.
type Download struct {
	URL     string
	Name    string        // the file name: the URL path's last element ("__unnamed__" without one)
	Digest  digest.Digest // sha256 of the content
	Size    int64
	ModTime time.Time // Last-Modified, else the Unix epoch (buildah)

	dir  string
	tree *Tree
}

// Fetch downloads rawURL. A checksum (sha256:HEX, ADD --checksum) that the content does not
// match is an error wrapping errdef.ErrDigestMismatch; an HTTP status of 400 or more is an
// error.
func (f *Fetcher) Fetch(ctx context.Context, rawURL, checksum string) (*Download, error) {
	var want digest.Digest
	if checksum != "" {
		d, err := digest.Parse(checksum)
		if err != nil || d.Algorithm() != digest.SHA256 {
			return nil, fmt.Errorf("ADD --checksum=%s: %w: want sha256:HEX", checksum, errdef.ErrInvalidArgument)
		}
		want = d
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w: %v", rawURL, errdef.ErrInvalidArgument, err)
	}
	name := "__unnamed__"
	if base := path.Base(u.Path); base != "." && base != "/" && base != "" {
		name = base
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ADD %s: fetch: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		sentinel := errdef.ErrUnavailable
		if resp.StatusCode == http.StatusNotFound {
			sentinel = errdef.ErrNotFound
		}
		return nil, fmt.Errorf("ADD %s: fetch: %w: HTTP status %s", rawURL, sentinel, resp.Status)
	}
	mtime := time.Unix(0, 0).UTC()
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			mtime = t.UTC()
		}
	}
	dir, err := os.MkdirTemp(f.TempDir, "wharf-add-")
	if err != nil {
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	dl := &Download{URL: rawURL, Name: name, ModTime: mtime, dir: dir}
	if err := dl.write(resp.Body, f.maxSize(), want); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	return dl, nil
}

func (f *Fetcher) maxSize() int64 {
	if f.MaxSize > 0 {
		return f.MaxSize
	}
	return 8 << 30
}

func (dl *Download) write(body io.Reader, max int64, want digest.Digest) error {
	p := path.Join(dl.dir, dl.Name)
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(body, max+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if n > max {
		return fmt.Errorf("download: %w: over %d bytes", errdef.ErrTooLarge, max)
	}
	dl.Size = n
	dl.Digest = digest.NewDigest(digest.SHA256, h)
	if want != "" && want != dl.Digest {
		return fmt.Errorf("%w: content hashes to %s, --checksum is %s", errdef.ErrDigestMismatch, dl.Digest, want)
	}
	if err := os.Chmod(p, 0600); err != nil {
		return err
	}
	return os.Chtimes(p, dl.ModTime, dl.ModTime)
}

// item opens the download as a one-file tree.
func (dl *Download) item() (*Item, error) {
	t, err := OpenRootfs(dl.dir, "download of "+dl.URL)
	if err != nil {
		return nil, err
	}
	dl.tree = t
	fd, err := t.openat(dl.Name, unix.O_PATH|unix.O_NOFOLLOW, unix.RESOLVE_NO_SYMLINKS)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &Item{Tree: t, Match: dl.Name, Path: dl.Name, Name: dl.Name, Rel: dl.Name, Entries: []Entry{entryFromStat("", &st)}}, nil
}
