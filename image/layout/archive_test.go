package layout

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

func TestArchiveRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	m := testImage(t, l, "a")
	if err := l.Tag(ctx, m, "v1"); err != nil {
		t.Fatal(err)
	}
	var one, two bytes.Buffer
	if err := WriteArchive(ctx, l, &one); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(ctx, l, &two); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Fatal("WriteArchive is not deterministic")
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(one.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || h.ModTime.Unix() != 0 {
			t.Errorf("%s: owner %d:%d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
	}
	if len(names) != 2+2+3 || names[0] != LayoutFile || names[1] != IndexFile || names[2] != "blobs/" {
		t.Errorf("archive entries = %v", names)
	}

	file := filepath.Join(t.TempDir(), "img.tar")
	os.WriteFile(file, one.Bytes(), 0o644)
	a, err := OpenArchive(ctx, file, ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Resolve(ctx, "v1")
	if err != nil || got.Digest != m.Digest {
		t.Fatalf("resolve in archive: %v %v", got.Digest, err)
	}
	// Add a tag, save, reopen.
	if err := a.Tag(ctx, m, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := a.Save(ctx); err != nil {
		t.Fatal(err)
	}
	tmp := a.tmp
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary directory left behind: %v", err)
	}
	a, err = OpenArchive(ctx, file, ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Resolve(ctx, "v2"); err != nil {
		t.Fatal(err)
	}
	if _, err := content.ReadAll(ctx, a, m, 0); err != nil {
		t.Fatal(err)
	}

	// Missing file: ErrNotFound, or a new empty layout with Create.
	missing := filepath.Join(t.TempDir(), "new.tar")
	if _, err := OpenArchive(ctx, missing, ArchiveOptions{}); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("open of a missing archive: %v", err)
	}
	n, err := OpenArchive(ctx, missing, ArchiveOptions{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Save(ctx); err != nil {
		t.Fatal(err)
	}
	n.Close()
	if n, err = OpenArchive(ctx, missing, ArchiveOptions{}); err != nil {
		t.Fatalf("reopen saved empty archive: %v", err)
	}
	n.Close()
}

func TestHostileArchives(t *testing.T) {
	ctx := context.Background()
	marker := `{"imageLayoutVersion":"1.0.0"}`
	index := `{"schemaVersion":2,"manifests":[]}`
	base := []tar.Header{
		{Name: LayoutFile, Typeflag: tar.TypeReg, Size: int64(len(marker))},
		{Name: IndexFile, Typeflag: tar.TypeReg, Size: int64(len(index))},
		{Name: "blobs/", Typeflag: tar.TypeDir},
	}
	body := map[string]string{LayoutFile: marker, IndexFile: index}
	cases := []struct {
		name  string
		extra tar.Header
		want  error
		text  string
	}{
		{"traversal", tar.Header{Name: "blobs/../../evil", Typeflag: tar.TypeReg, Size: 1}, errdef.ErrUnsafePath, "climbs out"},
		{"absolute", tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg, Size: 1}, errdef.ErrUnsafePath, "absolute"},
		{"symlink", tar.Header{Name: "blobs/sha256", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, errdef.ErrUnsafePath, "a symlink"},
		{"hard link", tar.Header{Name: "blobs/x", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, errdef.ErrUnsafePath, "a hard link"},
		{"device", tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, errdef.ErrUnsafePath, "a character device"},
		{"fifo", tar.Header{Name: "fifo", Typeflag: tar.TypeFifo}, errdef.ErrUnsafePath, "a fifo"},
		{"bad blob name", tar.Header{Name: "blobs/sha256/NOTHEX", Typeflag: tar.TypeReg, Size: 1}, errdef.ErrInvalidDigest, "invalid digest"},
		{"duplicate", tar.Header{Name: IndexFile, Typeflag: tar.TypeReg, Size: int64(len(index))}, errdef.ErrInvalidArgument, "duplicate"},
		{"huge index.json", tar.Header{Name: "./" + IndexFile, Typeflag: tar.TypeReg, Size: 100 << 20}, errdef.ErrTooLarge, "over the 4194304 byte limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			hs := append([]tar.Header{}, base...)
			if tc.name == "huge index.json" {
				hs = hs[:1] // its index.json is the huge one
			}
			for _, h := range append(hs, tc.extra) {
				h.Mode = 0o644
				tw.WriteHeader(&h)
				if h.Typeflag == tar.TypeReg {
					b := body[strings.TrimPrefix(h.Name, "./")]
					if int64(len(b)) != h.Size {
						b = strings.Repeat("x", int(min(h.Size, 1<<20)))
					}
					tw.Write([]byte(b))
				}
			}
			file := filepath.Join(outside, "a.tar")
			os.WriteFile(file, buf.Bytes(), 0o644)
			tmpDir := filepath.Join(outside, "tmp")
			os.Mkdir(tmpDir, 0o700)
			before := outsideSnapshot(t, outside, tmpDir)
			_, err := OpenArchive(ctx, file, ArchiveOptions{TempDir: tmpDir})
			if err == nil {
				t.Fatal("hostile archive accepted")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q, want %v and %q", err, tc.want, tc.text)
			}
			after := outsideSnapshot(t, outside, tmpDir)
			if len(after) != len(before) {
				t.Errorf("files appeared outside: %v", after)
			}
			if ents, _ := os.ReadDir(tmpDir); len(ents) != 0 {
				t.Errorf("temporary extraction left behind: %v", ents)
			}
		})
	}
}
