package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/contenttest"
	"github.com/wharfoci/wharf/errdef"
)

// chunky returns the content in reads of varying sizes (1 byte to 100 KiB), then fails with err
// after limit bytes when err is set.
type chunky struct {
	b     []byte
	i     int
	limit int
	err   error
}

func (c *chunky) Read(p []byte) (int, error) {
	if c.err != nil && c.limit <= 0 {
		return 0, c.err
	}
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	c.i++
	n := min(len(p), len(c.b), 1+(c.i*7919)%(100<<10))
	if c.err != nil {
		n = min(n, c.limit)
		c.limit -= n
	}
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

var errBoom = errors.New("boom")

type copyCase struct {
	name    string
	size    int
	off     int64 // bytes already in the file
	failAt  int   // the reader fails after this many bytes (with failErr)
	failErr error
	hashErr int64 // the hashed callback fails once this much is hashed
	wantErr error
}

func TestCopyPipelined(t *testing.T) {
	for _, tc := range []copyCase{
		{name: "empty", size: 0},
		{name: "one byte", size: 1},
		{name: "one buffer less one", size: 256<<10 - 1},
		{name: "one buffer", size: 256 << 10},
		{name: "one buffer and one", size: 256<<10 + 1},
		{name: "several buffers", size: 5<<20 + 13},
		{name: "past writeback", size: 20<<20 + 7},
		{name: "appends at offset", size: 3<<20 + 1, off: 1000},
		{name: "reader fails in the first buffer", size: 1 << 20, failAt: 1000, failErr: errBoom, wantErr: errBoom},
		{name: "reader fails later", size: 4 << 20, failAt: 3<<20 + 5, failErr: errBoom, wantErr: errBoom},
		{name: "unexpected EOF is a failure", size: 4 << 20, failAt: 1<<20 + 5, failErr: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF},
		{name: "hashed callback fails", size: 4 << 20, hashErr: 1 << 20, wantErr: errBoom},
	} {
		t.Run(tc.name, func(t *testing.T) { checkCopy(t, tc) })
		t.Run(tc.name+" with every core busy", func(t *testing.T) {
			for range cap(pipeSlots) { // no slot: the copy hashes in turn on its own goroutine
				pipeSlots <- struct{}{}
			}
			defer func() {
				for range cap(pipeSlots) {
					<-pipeSlots
				}
			}()
			checkCopy(t, tc)
		})
	}
}

// checkCopy runs copyPipelined for tc and checks that the file and the hash hold exactly the
// bytes copied, and that the hashed callback saw increasing offsets up to the end.
func checkCopy(t *testing.T, tc copyCase) {
	data := contenttest.Data(tc.name, tc.size)
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer f.Close()
	prefix := bytes.Repeat([]byte{'x'}, int(tc.off))
	_, err = f.Write(prefix)
	must(t, err)
	h := sha256.New()
	h.Write(prefix)
	last := tc.off
	hashed := func(n int64) error {
		if n <= last {
			t.Errorf("hashed went from %d to %d", last, n)
		}
		last = n
		if tc.hashErr > 0 && n >= tc.hashErr {
			return errBoom
		}
		return nil
	}
	r := &chunky{b: data, limit: tc.failAt, err: tc.failErr}
	n, err := copyPipelined(context.Background(), f, tc.off, h, r, hashed)
	if !errors.Is(err, tc.wantErr) {
		t.Fatalf("err = %v, want %v", err, tc.wantErr)
	}
	got, err := os.ReadFile(f.Name())
	must(t, err)
	if int64(len(got)) != tc.off+n {
		t.Fatalf("file has %d bytes, copied %d after %d", len(got), n, tc.off)
	}
	if !bytes.Equal(got[tc.off:], data[:n]) {
		t.Fatalf("file content differs from the first %d bytes", n)
	}
	if sum := sha256.Sum256(got); !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Fatalf("hash does not cover exactly what the file holds (%d bytes)", len(got))
	}
	if tc.wantErr == nil && (n != int64(tc.size) || last != tc.off+n) {
		t.Fatalf("copied %d of %d, last hashed offset %d", n, tc.size, last)
	}
}

func TestCopyPipelinedCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer f.Close()
	data := contenttest.Data("cancel", 8<<20)
	r := &chunky{b: data}
	calls := 0
	_, err = copyPipelined(ctx, f, 0, sha256.New(), io.TeeReader(r, writerFunc(func(p []byte) {
		if calls++; calls == 20 {
			cancel()
		}
	})), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

type writerFunc func([]byte)

func (w writerFunc) Write(p []byte) (int, error) { w(p); return len(p), nil }

// ReadFrom saves the digest state at checkpoints from the hashing goroutine: a writer whose
// reader fails midway resumes at a saved state that matches the data, and completes.
func TestWriterReadFromResume(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, WithCheckpointInterval(1<<20))
	data := contenttest.Data("readfrom", 9<<20+3)
	w, err := s.Writer(ctx, "rf")
	must(t, err)
	errCut := errors.New("connection reset")
	n, err := io.Copy(w, &chunky{b: data, limit: 6<<20 + 77, err: errCut})
	if !errors.Is(err, errCut) || n != 6<<20+77 || w.Offset() != n {
		t.Fatalf("copy = %d, %v; offset %d", n, err, w.Offset())
	}
	if w.Digest() != digest.FromBytes(data[:n]) {
		t.Fatalf("digest after a failed copy does not match the %d bytes written", n)
	}
	must(t, w.Close())
	w, err = s.Writer(ctx, "rf")
	must(t, err)
	if w.Offset() != n || w.Digest() != digest.FromBytes(data[:n]) {
		t.Fatalf("resumed at %d (wrote %d) with digest %s", w.Offset(), n, w.Digest())
	}
	_, err = io.Copy(w, bytes.NewReader(data[n:]))
	must(t, err)
	d := contenttest.Blob(digest.SHA256, data)
	must(t, w.Commit(ctx, d.Size, d.Digest))
}

// Push takes the reader under a verifying reader and checks size and digest itself.
func TestPushVerifiedSource(t *testing.T) {
	ctx := context.Background()
	data := contenttest.Data("push", 3<<20+1)
	d := contenttest.Blob(digest.SHA256, data)
	wrong := append([]byte(nil), data...)
	wrong[len(wrong)-1] ^= 1
	for _, tc := range []struct {
		name string
		body []byte
		want error
	}{
		{"right", data, nil},
		{"wrong byte", wrong, errdef.ErrDigestMismatch},
		{"short", data[:len(data)-1], errdef.ErrSizeMismatch},
		{"long", append(append([]byte(nil), data...), 'x'), errdef.ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			r := content.NewVerifyReader(bytes.NewReader(tc.body), d)
			if _, ok := content.VerifiedSource(r, d); !ok {
				t.Fatal("VerifiedSource does not see the verifying reader")
			}
			err := s.Push(ctx, d, r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("push: %v, want %v", err, tc.want)
			}
			if ok, _ := s.Exists(ctx, d); ok != (tc.want == nil) {
				t.Fatalf("exists = %v after push error %v", ok, err)
			}
		})
	}
}
