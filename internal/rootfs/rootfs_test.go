package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"/": ".", "": ".", ".": ".", "a": "a", "/a/b": "a/b", "../../a": "a", "/a/../../b/": "b", "a//b/./c": "a/b/c",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOpenFileConfined plants links that point out of the root in every way a layer or an image
// can, and checks that each resolves inside the root (or fails) and that the host file they aim
// at is never opened for writing.
func TestOpenFileConfined(t *testing.T) {
	outside := t.TempDir()
	host := filepath.Join(outside, "host")
	if err := os.WriteFile(host, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		links map[string]string
		open  string
		lands string // root-relative path that must hold the write ("" = open must fail)
	}{
		{"absolute link", map[string]string{"abs": host}, "abs", filepath.Join(outside, "host")[1:]},
		{"climbing relative link", map[string]string{"rel": "../../../../../../" + host}, "rel", filepath.Join(outside, "host")[1:]},
		{"dot-dot in the name", nil, "../../../" + host, filepath.Join(outside, "host")[1:]},
		{"link in a parent", map[string]string{"d": outside}, "d/host", filepath.Join(outside, "host")[1:]},
		{"link to /proc magic", map[string]string{"m": "/proc/self/root" + host}, "m", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for l, target := range tc.links {
				if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
			}
			if tc.lands != "" {
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(tc.lands)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			f, err := r.OpenFile(tc.open, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o600)
			if tc.lands == "" {
				if err == nil {
					f.Close()
					t.Fatalf("OpenFile(%q) succeeded", tc.open)
				}
			} else {
				if err != nil {
					t.Fatalf("OpenFile(%q): %v", tc.open, err)
				}
				f.WriteString("inside")
				f.Close()
				if b, err := os.ReadFile(filepath.Join(dir, tc.lands)); err != nil || string(b) != "inside" {
					t.Fatalf("write did not land at %s inside the root: %q %v", tc.lands, b, err)
				}
			}
			if b, _ := os.ReadFile(host); string(b) != "host" {
				t.Fatalf("host file changed: %q", b)
			}
		})
	}
}

func TestOpenRefusesSymlinkRoot(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(link); !errors.Is(err, errdef.ErrUnsafePath) {
		t.Fatalf("Open(symlink) = %v, want ErrUnsafePath", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Open(missing) succeeded")
	}
}

func TestReadFileLimit(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.ReadFile("/f", 10); err != nil || string(b) != "0123456789" {
		t.Fatalf("ReadFile = %q, %v", b, err)
	}
	if _, err := r.ReadFile("/f", 9); !errors.Is(err, unix.EFBIG) {
		t.Fatalf("ReadFile over the limit = %v, want EFBIG", err)
	}
	if _, err := r.ReadFile("/d", 100); err == nil {
		t.Fatal("ReadFile of a directory succeeded")
	}
}
