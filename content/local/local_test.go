package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/contenttest"
	"github.com/wharfoci/wharf/errdef"
)

func newStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	s, err := New(filepath.Join(t.TempDir(), "store"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	contenttest.Suite(t, "local", func(t *testing.T) contenttest.Store { return newStore(t) })
	contenttest.Suite(t, "local-ingestdir", func(t *testing.T) contenttest.Store {
		return newStore(t, WithIngestDir(filepath.Join(t.TempDir(), "uploads")), WithCheckpointInterval(4096))
	})
}

// tree lists every path under dir with its mode and size.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		lines = append(lines, fmt.Sprintf("%s %v %d", strings.TrimPrefix(p, dir), info.Mode(), info.Size()))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestLayoutStaysClean(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := []byte("layout blob")
	d := contenttest.Blob(digest.SHA256, b)
	if err := s.Push(ctx, d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	w, _ := s.Writer(ctx, "x")
	w.Write([]byte("abc"))
	w.Cancel(ctx)
	w, _ = s.Writer(ctx, "y")
	w.Write([]byte("def"))
	if err := w.Commit(ctx, 3, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(s.Root(), DefaultIngestDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ingest directory left behind: %v", err)
	}
	got := tree(t, s.Root())
	want := strings.Join([]string{
		" drwxr-xr-x 4096",
		"/blobs drwxr-xr-x 4096",
		"/blobs/sha256 drwxr-xr-x 4096",
		"/blobs/sha256/" + d.Digest.Encoded() + " -r--r--r-- 11",
		"/blobs/sha256/" + digest.FromString("def").Encoded() + " -r--r--r-- 3",
	}, "\n")
	if got != want {
		t.Fatalf("store tree:\n%s\nwant:\n%s", got, want)
	}
}

func TestBlobMode(t *testing.T) {
	s := newStore(t)
	b := []byte("read only")
	d := contenttest.Blob(digest.SHA256, b)
	if err := s.Push(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	p, err := s.BlobPath(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode() != 0o444 {
		t.Fatalf("blob mode %v, want -r--r--r--", st.Mode())
	}
}

func TestMalformedDigestsTouchNothing(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	s, err := New(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := tree(t, parent)
	for _, tc := range contenttest.MalformedDigests {
		t.Run(tc.Name, func(t *testing.T) {
			d := ocispec.Descriptor{Digest: digest.Digest(tc.Digest), Size: 1}
			wantErr := func(what string, err error) {
				if !errors.Is(err, errdef.ErrInvalidDigest) {
					t.Errorf("%s: %v, want invalid digest", what, err)
				}
			}
			wantErr("push", s.Push(ctx, d, strings.NewReader("x")))
			_, err := s.Fetch(ctx, d)
			wantErr("fetch", err)
			_, err = s.Exists(ctx, d)
			wantErr("exists", err)
			_, err = s.Info(ctx, d.Digest)
			wantErr("info", err)
			wantErr("delete", s.Delete(ctx, d.Digest))
			_, err = s.BlobPath(d.Digest)
			wantErr("blob path", err)
		})
	}
	if after := tree(t, parent); after != before {
		t.Fatalf("malformed digests changed the disk:\n%s\nbefore:\n%s", after, before)
	}
}

func TestSymlinksRefused(t *testing.T) {
	ctx := context.Background()
	secret := []byte("outside the store")
	d := contenttest.Blob(digest.SHA256, secret)
	for _, tc := range []struct {
		name string
		// link makes a symlink inside root pointing at outside (which holds a file named like
		// the blob at the right depth).
		link func(t *testing.T, root, outside string)
	}{
		{"blob", func(t *testing.T, root, outside string) {
			os.MkdirAll(filepath.Join(root, "blobs", "sha256"), 0o755)
			must(t, os.Symlink(filepath.Join(outside, "blobs", "sha256", d.Digest.Encoded()), filepath.Join(root, "blobs", "sha256", d.Digest.Encoded())))
		}},
		{"alg-dir", func(t *testing.T, root, outside string) {
			os.MkdirAll(filepath.Join(root, "blobs"), 0o755)
			must(t, os.Symlink(filepath.Join(outside, "blobs", "sha256"), filepath.Join(root, "blobs", "sha256")))
		}},
		{"blobs-dir", func(t *testing.T, root, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "blobs"), filepath.Join(root, "blobs")))
		}},
		{"relative-blob", func(t *testing.T, root, outside string) {
			os.MkdirAll(filepath.Join(root, "blobs", "sha256"), 0o755)
			rel, _ := filepath.Rel(filepath.Join(root, "blobs", "sha256"), filepath.Join(outside, "blobs", "sha256", d.Digest.Encoded()))
			must(t, os.Symlink(rel, filepath.Join(root, "blobs", "sha256", d.Digest.Encoded())))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root, outside := filepath.Join(dir, "store"), filepath.Join(dir, "outside")
			target := filepath.Join(outside, "blobs", "sha256", d.Digest.Encoded())
			must(t, os.MkdirAll(filepath.Dir(target), 0o755))
			must(t, os.WriteFile(target, secret, 0o644))
			must(t, os.MkdirAll(root, 0o755))
			tc.link(t, root, outside)
			outsideBefore := tree(t, outside)
			s, err := New(root)
			must(t, err)
			defer s.Close()

			if _, err := s.Fetch(ctx, d); !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("fetch through symlink: %v, want unsafe path", err)
			}
			if _, err := s.Exists(ctx, d); !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("exists through symlink: %v, want unsafe path", err)
			}
			if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("info through symlink: %v, want unsafe path", err)
			}
			other := []byte("another blob")
			od := contenttest.Blob(digest.SHA256, other)
			if err := s.Push(ctx, od, bytes.NewReader(other)); tc.name != "blob" && tc.name != "relative-blob" && !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("push through symlinked directory: %v, want unsafe path", err)
			}
			if err := s.Push(ctx, d, bytes.NewReader(secret)); !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("push over symlink: %v, want unsafe path", err)
			}
			w, err := s.Writer(ctx, "w")
			must(t, err)
			w.Write(secret)
			if err := w.Commit(ctx, d.Size, d.Digest); err == nil {
				t.Errorf("commit over symlink succeeded")
			}
			if err := s.Walk(ctx, func(i content.Info) error {
				if i.Digest == d.Digest {
					t.Errorf("walk followed the symlink to %s", i.Digest)
				}
				return nil
			}); err != nil && !errors.Is(err, errdef.ErrUnsafePath) {
				t.Errorf("walk: %v", err)
			}
			if got := tree(t, outside); got != outsideBefore {
				t.Fatalf("symlink target changed:\n%s\nwas:\n%s", got, outsideBefore)
			}
			if b, _ := os.ReadFile(target); !bytes.Equal(b, secret) {
				t.Fatalf("symlink target content changed")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The crash test re-executes the test binary: the child writes part of an ingest, reports how
// far it got, and waits to be killed with SIGKILL.
const crashEnv = "WHARF_CONTENT_CRASH_CHILD"

func TestCrashChild(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("helper for TestCrashResume")
	}
	s, err := New(root, WithCheckpointInterval(1<<20))
	must(t, err)
	w, err := s.Writer(context.Background(), "crash")
	must(t, err)
	b := crashData()
	n := len(b) * 3 / 5
	half := n / 2
	for off := 0; off < half; off += 100_000 { // Write, then io.Copy (ReadFrom, hashed on another goroutine)
		if _, err := w.Write(b[off:min(off+100_000, half)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.Copy(w, bytes.NewReader(b[half:n])); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("WROTE %d\n", n)
	time.Sleep(time.Hour) // killed here, never Close
}

func crashData() []byte { return contenttest.Data("crash", 10<<20+7) }

func TestCrashResume(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+root)
	out, err := cmd.StdoutPipe()
	must(t, err)
	cmd.Stderr = os.Stderr
	must(t, cmd.Start())
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	wrote := int64(-1)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "WROTE "); ok {
			wrote, _ = strconv.ParseInt(v, 10, 64)
			break
		}
	}
	if wrote < 0 {
		t.Fatalf("child did not report progress")
	}
	must(t, cmd.Process.Kill()) // SIGKILL: no Close, no deferred cleanup
	cmd.Wait()

	ctx := context.Background()
	s, err := New(root, WithCheckpointInterval(1<<20))
	must(t, err)
	defer s.Close()
	w, err := s.Writer(ctx, "crash")
	must(t, err)
	off := w.Offset()
	if off <= 0 || off > wrote {
		t.Fatalf("resumed at offset %d, child wrote %d", off, wrote)
	}
	t.Logf("child wrote %d bytes, resumed at %d", wrote, off)
	b := crashData()
	if w.Digest() != digest.FromBytes(b[:off]) {
		t.Fatalf("resumed digest does not match the first %d bytes", off)
	}
	if _, err := io.Copy(w, bytes.NewReader(b[off:])); err != nil {
		t.Fatal(err)
	}
	d := contenttest.Blob(digest.SHA256, b)
	must(t, w.Commit(ctx, d.Size, d.Digest))
	ok, err := s.Exists(ctx, d)
	if err != nil || !ok {
		t.Fatalf("blob after resumed commit: %v %v", ok, err)
	}
}

func TestResumeWithoutState(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, WithCheckpointInterval(4))
	w, err := s.Writer(ctx, "nostate")
	must(t, err)
	w.Write([]byte("hello "))
	w.Close()
	// Lose the saved state: the data is rehashed.
	states, _ := filepath.Glob(filepath.Join(s.Root(), DefaultIngestDir, "*.state"))
	if len(states) != 1 {
		t.Fatalf("state files: %v", states)
	}
	os.WriteFile(states[0], []byte("garbage"), 0o600)
	w, err = s.Writer(ctx, "nostate")
	must(t, err)
	if w.Offset() != 6 {
		t.Fatalf("offset %d", w.Offset())
	}
	w.Write([]byte("world"))
	must(t, w.Commit(ctx, 11, digest.FromString("hello world")))
}

func TestRemoveTemporary(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w, err := s.Writer(ctx, "keep")
	must(t, err)
	w.Write([]byte("resumable"))
	must(t, w.Close())
	dir := filepath.Join(s.Root(), DefaultIngestDir)
	must(t, os.WriteFile(filepath.Join(dir, "push-123"), []byte("left by a killed push"), 0o600))
	must(t, s.RemoveTemporary())
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || !strings.HasSuffix(ents[0].Name(), ".data") {
		t.Fatalf("ingest directory after cleanup: %v", ents)
	}
	w, err = s.Writer(ctx, "keep")
	must(t, err)
	if w.Offset() != 9 {
		t.Fatalf("resumable ingest lost: offset %d", w.Offset())
	}
	w.Cancel(ctx)
}

// Stale ingests go; young ones and ones a Writer holds stay, and the held one still commits.
func TestRemoveStaleIngests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, WithIngestDir(filepath.Join(t.TempDir(), "uploads")), WithCheckpointInterval(4))
	write := func(ref, data string) content.Writer {
		w, err := s.Writer(ctx, ref)
		must(t, err)
		_, err = w.Write([]byte(data))
		must(t, err)
		return w
	}
	age := func(ref string, d time.Duration) {
		old := time.Now().Add(-d)
		names, _ := filepath.Glob(filepath.Join(s.ingestDir, "*.data"))
		for _, n := range names {
			if filepath.Base(n) == ingestBase(ref)+".data" {
				must(t, os.Chtimes(n, old, old))
				return
			}
		}
		t.Fatalf("no ingest for %s", ref)
	}
	for _, ref := range []string{"old", "young"} {
		must(t, write(ref, "data of "+ref).Close())
	}
	held := write("held", "data of held")
	age("old", 8*24*time.Hour)
	age("held", 8*24*time.Hour)
	n, err := s.RemoveStaleIngests(time.Now().Add(-7*24*time.Hour), false)
	must(t, err)
	if n != 1 {
		t.Fatalf("removed %d, want 1 (the old one)", n)
	}
	if s.IngestExists("old") || !s.IngestExists("young") || !s.IngestExists("held") {
		t.Fatalf("after purge: old %v young %v held %v", s.IngestExists("old"), s.IngestExists("young"), s.IngestExists("held"))
	}
	if states, _ := filepath.Glob(filepath.Join(s.ingestDir, ingestBase("old")+".state*")); len(states) != 0 {
		t.Fatalf("state files left: %v", states)
	}
	must(t, held.Commit(ctx, 0, digest.FromString("data of held")))
	w, err := s.Writer(ctx, "old") // starts afresh
	must(t, err)
	if w.Offset() != 0 {
		t.Fatalf("reopened purged ingest at offset %d", w.Offset())
	}
	w.Cancel(ctx)
}
