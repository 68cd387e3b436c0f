package durable

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func record(t *testing.T, fail Step) *[]Step {
	t.Helper()
	var steps []Step
	hook = func(s Step, name string) error {
		steps = append(steps, s)
		if s == fail {
			return errors.New("injected " + string(s) + " failure")
		}
		return nil
	}
	t.Cleanup(func() { hook = nil })
	return &steps
}

// TestOrder: the data is fsynced before the rename, and the directory after it.
func TestOrder(t *testing.T) {
	dir := t.TempDir()
	steps := record(t, "")
	p := filepath.Join(dir, "tag")
	if err := WriteFile(p, []byte("sha256:abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []Step{StepCreate, StepWrite, StepSync, StepClose, StepRename, StepSyncDir}
	if !reflect.DeepEqual(*steps, want) {
		t.Fatalf("steps = %v, want %v", *steps, want)
	}
	if b, _ := os.ReadFile(p); string(b) != "sha256:abc" {
		t.Fatalf("content %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
}

// TestFailureKeepsOld: a failure at any step before the rename leaves the old content and no
// temporary file; after the rename (the directory fsync) the new content is there and the
// error is still reported (the write is not known to be durable).
func TestFailureKeepsOld(t *testing.T) {
	for _, step := range []Step{StepCreate, StepWrite, StepSync, StepClose, StepRename, StepSyncDir} {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "index.json")
			if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
				t.Fatal(err)
			}
			record(t, step)
			err := WriteFile(p, []byte("new"), 0o644)
			if err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("err = %v", err)
			}
			b, _ := os.ReadFile(p)
			want := "old"
			if step == StepSyncDir {
				want = "new"
			}
			if string(b) != want {
				t.Errorf("content %q, want %q", b, want)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("directory holds %v", ents)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, name := range []string{"", ".", "..", "a/b", "../x"} {
		if err := WriteAt(int(d.Fd()), dir, name, nil, 0o644); err == nil {
			t.Errorf("WriteAt(%q) succeeded", name)
		}
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}

// TestSymlinkReplaced: a symlink at the target is replaced by the file, never written through.
func TestSymlinkReplaced(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	p := filepath.Join(dir, "tag")
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("wrote through the symlink: %q", b)
	}
	if fi, _ := os.Lstat(p); fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("target is still a symlink")
	}
}

// TestMkdirAll: every created directory's parent is fsynced after the mkdir.
func TestMkdirAll(t *testing.T) {
	dir := t.TempDir()
	steps := record(t, "")
	p := filepath.Join(dir, "a", "b")
	if err := MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	want := []Step{StepMkdir, StepSyncMkd, StepMkdir, StepSyncMkd}
	if !reflect.DeepEqual(*steps, want) {
		t.Fatalf("steps = %v, want %v", *steps, want)
	}
	*steps = nil
	if err := MkdirAll(p, 0o755); err != nil || len(*steps) != 0 {
		t.Fatalf("existing: %v, steps %v", err, *steps)
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if err := MkdirAll(filepath.Join(dir, "file"), 0o755); err == nil {
		t.Error("MkdirAll over a file succeeded")
	}
	if !IsTemp(".wharf-tmp-tag-0123") || IsTemp("tag") {
		t.Error("IsTemp")
	}
}
