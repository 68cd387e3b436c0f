package layout

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzValidateRefName(f *testing.F) {
	for _, s := range []string{"latest", "v1.0", "example.com/app:1", "a--b", "../x", "a/", "", "sha256:abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateRefName(s) != nil {
			return
		}
		// Whatever is accepted is printable ASCII with no path climbing and no leading separator.
		if strings.Contains(s, "..") || strings.Contains(s, "//") {
			t.Fatalf("accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] > '~' {
				t.Fatalf("accepted %q with byte %#x", s, s[i])
			}
		}
		if s[0] == '/' || s[0] == '.' || s[0] == '-' || strings.HasSuffix(s, "/") {
			t.Fatalf("accepted %q", s)
		}
	})
}

func FuzzParseIndexJSON(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":1}]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[],"layers":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := parseIndexJSON(b)
		if err != nil {
			return
		}
		for _, d := range idx.Manifests {
			if strings.ContainsAny(d.Digest.Encoded(), "./") || d.Size < 0 {
				t.Fatalf("accepted descriptor %+v", d)
			}
		}
	})
}

// FuzzExtract: whatever the tar, extraction creates nothing outside its directory and no
// symlink, device or fifo inside it.
func FuzzExtract(f *testing.F) {
	add := func(hs ...tar.Header) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		tw.Close()
		f.Add(buf.Bytes())
	}
	add(tar.Header{Name: LayoutFile, Typeflag: tar.TypeReg, Size: 3, Mode: 0o644})
	add(tar.Header{Name: "blobs/../../x", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644})
	add(tar.Header{Name: "blobs/sha256", Typeflag: tar.TypeSymlink, Linkname: "/"})
	add(tar.Header{Name: "blobs/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "blobs/sha256/" + strings.Repeat("a", 64), Typeflag: tar.TypeReg, Size: 2, Mode: 0o644})
	f.Fuzz(func(t *testing.T, b []byte) {
		outside := t.TempDir()
		dir := filepath.Join(outside, "x")
		_ = Extract(context.Background(), bytes.NewReader(b), dir)
		ents, _ := os.ReadDir(outside)
		if len(ents) != 1 {
			t.Fatalf("extraction created %v next to its directory", ents)
		}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.Mode().IsRegular() && !info.IsDir() {
				t.Fatalf("extraction created %s (%s)", p, info.Mode())
			}
			return nil
		})
	})
}
