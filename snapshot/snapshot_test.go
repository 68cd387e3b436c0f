package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
}

func newStore(t *testing.T, d Driver) *Snapshotter {
	t.Helper()
	s, err := New(context.Background(), filepath.Join(t.TempDir(), "snapshots"), Options{Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver() != d {
		t.Fatalf("driver %s, want %s", s.Driver(), d)
	}
	return s
}

// mounted mounts mounts on a new directory, runs fn in it and unmounts.
func mounted(t *testing.T, mounts []Mount, fn func(dir string)) {
	t.Helper()
	dir := t.TempDir()
	if err := MountAll(mounts, dir); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := Unmount(dir); err != nil {
			t.Fatal(err)
		}
	}()
	fn(dir)
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

// TestLifecycle: prepare, write, commit, prepare on it, delete and add, commit, view; the
// second snapshot's own directory holds only its changes (overlay: a whiteout for the delete).
func TestLifecycle(t *testing.T) {
	needRoot(t)
	for _, d := range []Driver{Overlay, Native} {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t, d)
			m, err := s.Prepare(ctx, "build-1", "", WithLabels(map[string]string{"step": "1"}))
			if err != nil {
				t.Fatal(err)
			}
			mounted(t, m, func(dir string) {
				write(t, filepath.Join(dir, "etc/hostname"), "one\n")
				write(t, filepath.Join(dir, "keep"), "kept\n")
			})
			if err := s.Commit(ctx, "sha256:l1", "build-1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Stat(ctx, "build-1"); !errors.Is(err, errdef.ErrNotFound) {
				t.Fatalf("the key outlives its commit: %v", err)
			}
			i, err := s.Stat(ctx, "sha256:l1")
			if err != nil || i.Kind != KindCommitted || i.Labels["step"] != "1" {
				t.Fatalf("stat = %+v, %v", i, err)
			}
			m, err = s.Prepare(ctx, "build-2", "sha256:l1")
			if err != nil {
				t.Fatal(err)
			}
			mounted(t, m, func(dir string) {
				if got := read(filepath.Join(dir, "etc/hostname")); got != "one\n" {
					t.Fatalf("lower content %q", got)
				}
				os.Remove(filepath.Join(dir, "etc/hostname"))
				write(t, filepath.Join(dir, "new"), "two\n")
			})
			if d == Overlay {
				own, _ := s.Dir(ctx, "build-2")
				var st unix.Stat_t
				if err := unix.Lstat(filepath.Join(own, "etc/hostname"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
					t.Errorf("no overlay whiteout in the upper directory: %v %o", err, st.Mode)
				}
				if _, err := os.Stat(filepath.Join(own, "keep")); err == nil {
					t.Error("the upper directory holds an unchanged lower file")
				}
			}
			if err := s.Commit(ctx, "sha256:l2", "build-2"); err != nil {
				t.Fatal(err)
			}
			m, err = s.View(ctx, "view", "sha256:l2")
			if err != nil {
				t.Fatal(err)
			}
			mounted(t, m, func(dir string) {
				if _, err := os.Stat(filepath.Join(dir, "etc/hostname")); err == nil {
					t.Error("a deleted file is visible")
				}
				if read(filepath.Join(dir, "keep")) != "kept\n" || read(filepath.Join(dir, "new")) != "two\n" {
					t.Error("view content")
				}
				if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err == nil {
					t.Error("a view is writable")
				}
			})
			if err := s.Remove(ctx, "sha256:l1"); !errors.Is(err, errdef.ErrInvalidState) {
				t.Fatalf("removing a parent: %v", err)
			}
			var names []string
			s.Walk(ctx, func(i Info) error { names = append(names, i.Name+":"+string(i.Kind)); return nil })
			if strings.Join(names, " ") != "sha256:l1:committed sha256:l2:committed view:view" {
				t.Fatalf("walk = %v", names)
			}
			for _, k := range []string{"view", "sha256:l2", "sha256:l1"} {
				if err := s.Remove(ctx, k); err != nil {
					t.Fatal(err)
				}
			}
			ents, _ := os.ReadDir(filepath.Join(s.Root(), "snapshots"))
			if len(ents) != 0 {
				t.Errorf("left: %v", ents)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Native)
	if _, err := s.Prepare(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"key in use", func() error { _, err := s.Prepare(ctx, "a", ""); return err }(), errdef.ErrAlreadyExists},
		{"unknown parent", func() error { _, err := s.Prepare(ctx, "b", "nosuch"); return err }(), errdef.ErrNotFound},
		{"active parent", func() error { _, err := s.Prepare(ctx, "b", "a"); return err }(), errdef.ErrInvalidState},
		{"empty key", func() error { _, err := s.Prepare(ctx, "", ""); return err }(), errdef.ErrInvalidArgument},
		{"commit unknown", s.Commit(ctx, "x", "nosuch"), errdef.ErrNotFound},
		{"commit to empty name", s.Commit(ctx, "", "a"), errdef.ErrInvalidArgument},
		{"remove unknown", s.Remove(ctx, "nosuch"), errdef.ErrNotFound},
		{"other driver", func() error { _, err := New(ctx, s.Root(), Options{Driver: Overlay}); return err }(), errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("err = %v, want %v", tc.err, tc.want)
			}
		})
	}
	if err := s.Commit(ctx, "c", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prepare(ctx, "d", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c", "d"); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Fatalf("commit over a name: %v", err)
	}
	if _, err := s.Mounts(ctx, "c"); !errors.Is(err, errdef.ErrInvalidState) {
		t.Fatalf("mounts of a committed snapshot: %v", err)
	}
}

// TestCrashRecovery: the states a kill -9 can leave, made by hand, are repaired by the next
// New: a half-made directory goes, an unfinished commit leaves the active snapshot as it was,
// a finished commit whose key was not yet dropped keeps only the name.
func TestCrashRecovery(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Native)
	root := s.Root()
	// half-made: a directory without an index
	os.MkdirAll(filepath.Join(root, "snapshots", "77", "fs"), 0o755)
	// an unfinished commit: the name indexed, the record still the active key's
	if _, err := s.Prepare(ctx, "active", ""); err != nil {
		t.Fatal(err)
	}
	id, _ := s.readIndex("active")
	if err := s.writeIndex("committed-name", id); err != nil {
		t.Fatal(err)
	}
	// a finished commit whose key index was not removed
	if _, err := s.Prepare(ctx, "k2", ""); err != nil {
		t.Fatal(err)
	}
	id2, _ := s.readIndex("k2")
	if err := s.Commit(ctx, "n2", "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.writeIndex("k2", id2); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "keys", ".wharf-tmp-x-1234"), []byte("junk"), 0o600)

	s, err := New(ctx, root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "snapshots", "77")); err == nil {
		t.Error("the half-made directory is still there")
	}
	if i, err := s.Stat(ctx, "active"); err != nil || i.Kind != KindActive {
		t.Errorf("active: %+v %v", i, err)
	}
	if _, err := s.Stat(ctx, "committed-name"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("the unfinished commit's name: %v", err)
	}
	if _, err := s.Stat(ctx, "k2"); !errors.Is(err, errdef.ErrNotFound) {
		t.Errorf("the committed key: %v", err)
	}
	if i, err := s.Stat(ctx, "n2"); err != nil || i.Kind != KindCommitted {
		t.Errorf("n2: %+v %v", i, err)
	}
	if _, err := os.Stat(filepath.Join(root, "keys", ".wharf-tmp-x-1234")); err == nil {
		t.Error("a temporary index file is left")
	}
}

// TestConcurrentPrepare: goroutines preparing at once get distinct directories.
func TestConcurrentPrepare(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, Native)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := s.Prepare(ctx, fmt.Sprint("k", i), "")
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]bool{}
	s.Walk(ctx, func(i Info) error { ids[i.ID] = true; return nil })
	if len(ids) != 16 {
		t.Fatalf("%d distinct directories for 16 snapshots", len(ids))
	}
}

// TestManyLayers: a chain too long for one page of mount options is mounted through fsconfig.
func TestManyLayers(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	s := newStore(t, Overlay)
	parent := ""
	const n = 120
	for i := 0; i < n; i++ {
		key := fmt.Sprint("k", i)
		if _, err := s.Prepare(ctx, key, parent); err != nil {
			t.Fatal(err)
		}
		d, _ := s.Dir(ctx, key)
		write(t, filepath.Join(d, fmt.Sprint("f", i)), fmt.Sprint(i))
		name := fmt.Sprintf("sha256:%064d", i)
		if err := s.Commit(ctx, name, key); err != nil {
			t.Fatal(err)
		}
		parent = name
	}
	m, err := s.Prepare(ctx, "top", parent)
	if err != nil {
		t.Fatal(err)
	}
	if opt := strings.Join(m[0].Options, ","); len(opt) < 4096 {
		t.Fatalf("options are only %d bytes: the test needs more", len(opt))
	}
	mounted(t, m, func(dir string) {
		for i := 0; i < n; i++ {
			if got := read(filepath.Join(dir, fmt.Sprint("f", i))); got != fmt.Sprint(i) {
				t.Fatalf("f%d = %q", i, got)
			}
		}
	})
}
