package rootfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAllFollow(t *testing.T) {
	for _, tc := range []struct {
		name    string
		links   map[string]string // link → target, made before
		dirs    []string
		arg     string
		created string // must exist inside the root afterwards
	}{
		{"plain", nil, nil, "/a/b/c", "a/b/c"},
		{"existing", nil, []string{"x/y"}, "x/y", "x/y"},
		{"dangling absolute link", map[string]string{"evil": "/host/dir"}, nil, "/evil/sub", "host/dir/sub"},
		{"climbing relative link", map[string]string{"up": "../../../../etc/x"}, nil, "/up", "etc/x"},
		{"link to a link", map[string]string{"l1": "l2", "l2": "/real"}, nil, "/l1/d", "real/d"},
		{"dot-dot in the name", nil, nil, "/../../a/../b", "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			outside := t.TempDir()
			dir := t.TempDir()
			for _, d := range tc.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for l, target := range tc.links {
				if target == "/host/dir" {
					target = outside + "/dir"
				}
				if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			f, err := r.MkdirAllFollow(tc.arg, 0o755)
			if err != nil {
				t.Fatalf("MkdirAllFollow(%q): %v", tc.arg, err)
			}
			f.Close()
			want := tc.created
			if tc.name == "dangling absolute link" {
				want = filepath.Join(outside, "dir", "sub")[1:]
			}
			if st, err := os.Stat(filepath.Join(dir, want)); err != nil || !st.IsDir() {
				t.Fatalf("%s not created inside the root: %v", want, err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("created outside the root: %v", ents)
			}
		})
	}
}

func TestMkdirAllFollowLoop(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("b", filepath.Join(dir, "a"))
	os.Symlink("a", filepath.Join(dir, "b"))
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.MkdirAllFollow("a/x", 0o755); err == nil {
		t.Fatal("a symlink loop was not refused")
	}
}
