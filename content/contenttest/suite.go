// Package contenttest is the conformance suite of the content contracts (content/content.go):
// one Suite run against every implementation (content/local, content/memory, the registry
// client), as containerd's ContentSuite does for its stores.
package contenttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// Store is what the suite needs; Deleter, Walker, InfoProvider and Ingester (and
// AlgWriter) are tested when the store has them.
type Store interface {
	content.Storage
}

// AlgWriter is the optional ability to open an ingest hashing with a chosen algorithm
// (content/local and content/memory have it).
type AlgWriter interface {
	WriterAlg(ctx context.Context, ref string, alg digest.Algorithm) (content.Writer, error)
}

// MalformedDigests are refused by every store before anything touches a disk or a network.
var MalformedDigests = []struct{ Name, Digest string }{
	{"traversal", "sha256:../../x"},
	{"traversal-padded", "sha256:../../../../../../../../../../../../../../../../../../../../../../../../../etc/passwd"},
	{"uppercase", "sha256:" + "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"},
	{"short", "sha256:abc"},
	{"long", "sha256:" + string(bytes.Repeat([]byte("a"), 65))},
	{"sha512-short", "sha512:" + string(bytes.Repeat([]byte("a"), 64))},
	{"unknown-algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e"},
	{"no-algorithm", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"empty", ""},
	{"slash", "sha256:e3b0c44298fc1c149afbf4c8996fb924/7ae41e4649b934ca495991b7852b855"},
}

// Blob returns the descriptor of b hashed with alg.
func Blob(alg digest.Algorithm, b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: alg.FromBytes(b), Size: int64(len(b))}
}

// Data returns n deterministic bytes that differ with seed.
func Data(seed string, n int) []byte {
	out := make([]byte, 0, n+64)
	for i := 0; len(out) < n; i++ {
		out = fmt.Appendf(out, "%s-%d;", seed, i)
	}
	return out[:n]
}

// Suite runs the conformance tests; newStore returns a fresh, empty store for each test.
func Suite(t *testing.T, name string, newStore func(t *testing.T) Store) {
	t.Run(name, func(t *testing.T) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
		}
	})
}

var tests = []struct {
	name string
	fn   func(t *testing.T, s Store)
}{
	{"PushFetchExists", testPushFetchExists},
	{"Missing", testMissing},
	{"IdempotentPush", testIdempotentPush},
	{"EmptyBlob", testEmptyBlob},
	{"WrongDigest", testWrongDigest},
	{"WrongSize", testWrongSize},
	{"NegativeSize", testNegativeSize},
	{"FetchSizeMismatch", testFetchSizeMismatch},
	{"MalformedDigests", testMalformedDigests},
	{"Delete", testDelete},
	{"Walk", testWalk},
	{"SHA512", testSHA512},
	{"ConcurrentPush", testConcurrentPush},
	{"WriterResume", testWriterResume},
	{"WriterBusy", testWriterBusy},
	{"WriterCommitMismatch", testWriterCommitMismatch},
	{"WriterCancelTwice", testWriterCancelTwice},
	{"WriterCommitExisting", testWriterCommitExisting},
	{"WriterSHA512", testWriterSHA512},
}

func push(t *testing.T, s Store, d ocispec.Descriptor, b []byte) {
	t.Helper()
	if err := s.Push(context.Background(), d, bytes.NewReader(b)); err != nil {
		t.Fatalf("push %s: %v", d.Digest, err)
	}
}

func mustFetch(t *testing.T, s Store, d ocispec.Descriptor, want []byte) {
	t.Helper()
	rc, err := s.Fetch(context.Background(), d)
	if err != nil {
		t.Fatalf("fetch %s: %v", d.Digest, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", d.Digest, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("fetch %s: got %d bytes, want %d (content differs)", d.Digest, len(got), len(want))
	}
}

func mustExist(t *testing.T, s Store, d ocispec.Descriptor, want bool) {
	t.Helper()
	ok, err := s.Exists(context.Background(), d)
	if err != nil {
		t.Fatalf("exists %s: %v", d.Digest, err)
	}
	if ok != want {
		t.Fatalf("exists %s = %v, want %v", d.Digest, ok, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testPushFetchExists(t *testing.T, s Store) {
	b := Data("hello", 100_000)
	d := Blob(digest.SHA256, b)
	mustExist(t, s, d, false)
	push(t, s, d, b)
	mustExist(t, s, d, true)
	mustFetch(t, s, d, b)
	if ip, ok := s.(content.InfoProvider); ok {
		info, err := ip.Info(context.Background(), d.Digest)
		if err != nil || info.Size != d.Size || info.Digest != d.Digest {
			t.Fatalf("info %s = %+v, %v", d.Digest, info, err)
		}
	}
	got, err := content.ReadAll(context.Background(), s, d, 0)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read all: %v", err)
	}
}

func testMissing(t *testing.T, s Store) {
	d := Blob(digest.SHA256, []byte("absent"))
	mustExist(t, s, d, false)
	_, err := s.Fetch(context.Background(), d)
	wantErr(t, "fetch missing", err, errdef.ErrNotFound)
	if ip, ok := s.(content.InfoProvider); ok {
		_, err := ip.Info(context.Background(), d.Digest)
		wantErr(t, "info missing", err, errdef.ErrNotFound)
	}
}

func testIdempotentPush(t *testing.T, s Store) {
	b := []byte("twice")
	d := Blob(digest.SHA256, b)
	push(t, s, d, b)
	push(t, s, d, b)
	mustFetch(t, s, d, b)
}

func testEmptyBlob(t *testing.T, s Store) {
	d := Blob(digest.SHA256, nil)
	push(t, s, d, nil)
	mustExist(t, s, d, true)
	mustFetch(t, s, d, nil)
}

func testWrongDigest(t *testing.T, s Store) {
	b := []byte("actual content")
	d := Blob(digest.SHA256, []byte("claimed content"))
	d.Size = int64(len(b))
	err := s.Push(context.Background(), d, bytes.NewReader(b))
	wantErr(t, "push wrong digest", err, errdef.ErrDigestMismatch)
	mustExist(t, s, d, false)
}

func testWrongSize(t *testing.T, s Store) {
	b := Data("sized", 5000)
	for _, tc := range []struct {
		name  string
		delta int64
	}{{"short", 1}, {"long", -1}, {"much-longer", -4000}} {
		t.Run(tc.name, func(t *testing.T) {
			d := Blob(digest.SHA256, b)
			d.Size += tc.delta // "short": the content is shorter than the descriptor says
			err := s.Push(context.Background(), d, bytes.NewReader(b))
			wantErr(t, "push wrong size", err, errdef.ErrSizeMismatch)
			mustExist(t, s, d, false)
		})
	}
}

func testNegativeSize(t *testing.T, s Store) {
	d := Blob(digest.SHA256, []byte("x"))
	d.Size = -1
	err := s.Push(context.Background(), d, bytes.NewReader([]byte("x")))
	wantErr(t, "push size -1", err, errdef.ErrInvalidSize)
	_, err = s.Fetch(context.Background(), d)
	wantErr(t, "fetch size -1", err, errdef.ErrInvalidSize)
}

func testFetchSizeMismatch(t *testing.T, s Store) {
	b := []byte("exact size")
	d := Blob(digest.SHA256, b)
	push(t, s, d, b)
	for _, delta := range []int64{-1, 1} {
		dd := d
		dd.Size += delta
		rc, err := s.Fetch(context.Background(), dd)
		if err == nil {
			// A store may only notice while reading; the content must still not pass as dd.
			_, err = io.ReadAll(content.NewVerifyReader(rc, dd))
			rc.Close()
		}
		wantErr(t, fmt.Sprintf("fetch with size %d", dd.Size), err, errdef.ErrSizeMismatch)
	}
}

func testMalformedDigests(t *testing.T, s Store) {
	ctx := context.Background()
	for _, tc := range MalformedDigests {
		t.Run(tc.Name, func(t *testing.T) {
			d := ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.Digest(tc.Digest), Size: 1}
			err := s.Push(ctx, d, bytes.NewReader([]byte("x")))
			wantErr(t, "push", err, errdef.ErrInvalidDigest)
			_, err = s.Fetch(ctx, d)
			wantErr(t, "fetch", err, errdef.ErrInvalidDigest)
			_, err = s.Exists(ctx, d)
			wantErr(t, "exists", err, errdef.ErrInvalidDigest)
			if del, ok := s.(content.Deleter); ok {
				wantErr(t, "delete", del.Delete(ctx, d.Digest), errdef.ErrInvalidDigest)
			}
			if ip, ok := s.(content.InfoProvider); ok {
				_, err := ip.Info(ctx, d.Digest)
				wantErr(t, "info", err, errdef.ErrInvalidDigest)
			}
			if ing, ok := s.(content.Ingester); ok && tc.Digest != "" { // "" means "no check" to Commit
				w, err := ing.Writer(ctx, "malformed-"+tc.Name)
				if err != nil {
					t.Fatalf("writer: %v", err)
				}
				w.Write([]byte("x"))
				wantErr(t, "commit", w.Commit(ctx, 1, d.Digest), errdef.ErrInvalidDigest)
			}
		})
	}
}

func testDelete(t *testing.T, s Store) {
	del, ok := s.(content.Deleter)
	if !ok {
		t.Skip("store has no Delete")
	}
	b := []byte("to delete")
	d := Blob(digest.SHA256, b)
	push(t, s, d, b)
	if err := del.Delete(context.Background(), d.Digest); err != nil {
		t.Fatalf("delete: %v", err)
	}
	mustExist(t, s, d, false)
	wantErr(t, "delete again", del.Delete(context.Background(), d.Digest), errdef.ErrNotFound)
	push(t, s, d, b) // pushable again
	mustFetch(t, s, d, b)
}

func testWalk(t *testing.T, s Store) {
	w, ok := s.(content.Walker)
	if !ok {
		t.Skip("store has no Walk")
	}
	want := map[digest.Digest]int64{}
	for i, alg := range []digest.Algorithm{digest.SHA256, digest.SHA256, digest.SHA512} {
		b := Data(fmt.Sprint("walk", i), 10+i)
		d := Blob(alg, b)
		push(t, s, d, b)
		want[d.Digest] = d.Size
	}
	got := map[digest.Digest]int64{}
	if err := w.Walk(context.Background(), func(i content.Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatalf("walk: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("walk = %v, want %v", got, want)
	}
	stop := errors.New("stop")
	n := 0
	err := w.Walk(context.Background(), func(content.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("walk stopped by fn: err %v after %d calls", err, n)
	}
}

func testSHA512(t *testing.T, s Store) {
	b := Data("sha512", 70_000)
	d := Blob(digest.SHA512, b)
	push(t, s, d, b)
	mustExist(t, s, d, true)
	mustFetch(t, s, d, b)
	mustExist(t, s, Blob(digest.SHA256, b), false)
	bad := d
	bad.Digest = digest.SHA512.FromBytes([]byte("other"))
	wantErr(t, "push sha512 mismatch", s.Push(context.Background(), bad, bytes.NewReader(b)), errdef.ErrDigestMismatch)
}

func testConcurrentPush(t *testing.T, s Store) {
	b := Data("concurrent", 3<<20)
	d := Blob(digest.SHA256, b)
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Push(context.Background(), d, bytes.NewReader(b))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("push %d: %v", i, err)
		}
	}
	mustFetch(t, s, d, b)
	if w, ok := s.(content.Walker); ok {
		n := 0
		w.Walk(context.Background(), func(content.Info) error { n++; return nil })
		if n != 1 {
			t.Fatalf("walk after concurrent pushes: %d blobs, want 1", n)
		}
	}
}

func ingester(t *testing.T, s Store) content.Ingester {
	ing, ok := s.(content.Ingester)
	if !ok {
		t.Skip("store has no Writer")
	}
	return ing
}

func openWriter(t *testing.T, ing content.Ingester, ref string) content.Writer {
	t.Helper()
	w, err := ing.Writer(context.Background(), ref)
	if err != nil {
		t.Fatalf("writer %q: %v", ref, err)
	}
	return w
}

func testWriterResume(t *testing.T, s Store) {
	ing := ingester(t, s)
	ctx := context.Background()
	b := Data("resume", 1<<20+123)
	d := Blob(digest.SHA256, b)
	const ref = "upload/ref with spaces/../and slashes"
	w := openWriter(t, ing, ref)
	if w.Offset() != 0 {
		t.Fatalf("fresh offset %d", w.Offset())
	}
	half := len(b) / 2
	if _, err := w.Write(b[:half]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errdef.ErrInvalidState) {
		t.Fatalf("write after close: %v", err)
	}
	w = openWriter(t, ing, ref)
	if w.Offset() != int64(half) {
		t.Fatalf("resumed offset %d, want %d", w.Offset(), half)
	}
	if w.Digest() != digest.FromBytes(b[:half]) {
		t.Fatalf("resumed digest %s", w.Digest())
	}
	if _, err := io.Copy(w, bytes.NewReader(b[half:])); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != d.Digest {
		t.Fatalf("digest %s, want %s", w.Digest(), d.Digest)
	}
	if err := w.Commit(ctx, d.Size, d.Digest); err != nil {
		t.Fatalf("commit: %v", err)
	}
	defer w.Cancel(ctx) // a no-op after Commit
	mustFetch(t, s, d, b)
	if err := w.Commit(ctx, d.Size, d.Digest); !errors.Is(err, errdef.ErrInvalidState) {
		t.Fatalf("second commit: %v", err)
	}
	w = openWriter(t, ing, ref)
	defer w.Cancel(ctx)
	if w.Offset() != 0 {
		t.Fatalf("offset after commit %d, want a fresh ingest", w.Offset())
	}
}

func testWriterBusy(t *testing.T, s Store) {
	ing := ingester(t, s)
	w := openWriter(t, ing, "busy")
	_, err := ing.Writer(context.Background(), "busy")
	wantErr(t, "second writer", err, errdef.ErrInvalidState)
	w.Close()
	w = openWriter(t, ing, "busy")
	w.Cancel(context.Background())
}

func testWriterCommitMismatch(t *testing.T, s Store) {
	ing := ingester(t, s)
	ctx := context.Background()
	b := []byte("committed content")
	for _, tc := range []struct {
		name   string
		size   int64
		dgst   digest.Digest
		target error
	}{
		{"digest", int64(len(b)), digest.FromBytes([]byte("other")), errdef.ErrDigestMismatch},
		{"size-short", int64(len(b)) + 1, digest.FromBytes(b), errdef.ErrSizeMismatch},
		{"size-long", int64(len(b)) - 1, digest.FromBytes(b), errdef.ErrSizeMismatch},
		{"sha512-digest", int64(len(b)), digest.SHA512.FromBytes([]byte("other")), errdef.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := openWriter(t, ing, "mismatch")
			w.Write(b)
			wantErr(t, "commit", w.Commit(ctx, tc.size, tc.dgst), tc.target)
			mustExist(t, s, Blob(digest.SHA256, b), false)
			w = openWriter(t, ing, "mismatch") // the failed commit closed and discarded it
			if w.Offset() != 0 {
				t.Fatalf("offset after failed commit %d", w.Offset())
			}
			w.Cancel(ctx)
		})
	}
}

func testWriterCancelTwice(t *testing.T, s Store) {
	ing := ingester(t, s)
	ctx := context.Background()
	w := openWriter(t, ing, "cancel")
	w.Write([]byte("discard me"))
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(ctx); err != nil {
		t.Fatalf("second cancel: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}
	w = openWriter(t, ing, "cancel")
	if w.Offset() != 0 {
		t.Fatalf("offset after cancel %d", w.Offset())
	}
	w.Close()
	if err := w.Cancel(ctx); err != nil { // after Close: keeps the ingest
		t.Fatal(err)
	}
	w = openWriter(t, ing, "cancel")
	w.Cancel(ctx)
}

func testWriterCommitExisting(t *testing.T, s Store) {
	ing := ingester(t, s)
	ctx := context.Background()
	b := []byte("already here")
	d := Blob(digest.SHA256, b)
	push(t, s, d, b)
	w := openWriter(t, ing, "existing")
	w.Write(b)
	if err := w.Commit(ctx, d.Size, d.Digest); err != nil {
		t.Fatalf("commit existing: %v", err)
	}
	mustFetch(t, s, d, b)
	// size 0 and no digest: commit whatever was written (here nothing: the empty blob).
	w = openWriter(t, ing, "empty")
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatalf("commit empty: %v", err)
	}
	mustExist(t, s, Blob(digest.SHA256, nil), true)
}

func testWriterSHA512(t *testing.T, s Store) {
	ing := ingester(t, s)
	ctx := context.Background()
	b := Data("w512", 200_000)
	d := Blob(digest.SHA512, b)
	// A sha256 writer committed under a sha512 digest (a registry learns it at the end).
	w := openWriter(t, ing, "w512")
	w.Write(b)
	if err := w.Commit(ctx, d.Size, d.Digest); err != nil {
		t.Fatalf("commit sha512 through a default writer: %v", err)
	}
	mustFetch(t, s, d, b)
	aw, ok := s.(AlgWriter)
	if !ok {
		return
	}
	b2 := Data("w512b", 300_000)
	d2 := Blob(digest.SHA512, b2)
	w, err := aw.WriterAlg(ctx, "w512b", digest.SHA512)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b2[:1000])
	w.Close()
	if w, err = aw.WriterAlg(ctx, "w512b", digest.SHA512); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 1000 {
		t.Fatalf("resumed sha512 offset %d", w.Offset())
	}
	w.Write(b2[1000:])
	if w.Digest() != d2.Digest {
		t.Fatalf("sha512 writer digest %s, want %s", w.Digest(), d2.Digest)
	}
	if err := w.Commit(ctx, 0, ""); err != nil {
		t.Fatal(err)
	}
	mustFetch(t, s, d2, b2)
	if _, err := aw.WriterAlg(ctx, "md5", "md5"); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("md5 writer: %v", err)
	}
}
