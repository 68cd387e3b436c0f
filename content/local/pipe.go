package local

import (
	"context"
	"hash"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	// pipeBufs buffers of pipeBufSize circulate between the reading and the hashing goroutine
	// of a pipelined copy. Measured pushing 1 GiB to the registry here (bench.sh push-big-1,
	// medians of 4): 1 MiB 610–630 MB/s, 2 MiB 615, 512 KiB 550, 256 KiB 410–560 (more
	// handoffs between the goroutines).
	pipeBufs    = 4
	pipeBufSize = 1 << 20
	// writebackEvery is how often a big write asks the kernel to start writing back what it
	// wrote, so that the fsync of the commit waits for the tail only.
	writebackEvery = 8 << 20
)

var (
	bufPool  = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}
	pipePool = sync.Pool{New: func() any { b := make([]byte, pipeBufSize); return &b }}
	// pipeSlots bounds the copies hashing on a goroutine of their own to the cores: a second
	// goroutine only helps while a core is idle, and with every upload of a busy registry
	// holding its buffers the next GC goal doubled and peak RSS went from 24 to 77 MB.
	pipeSlots = make(chan struct{}, max(2, runtime.NumCPU()))
)

// copyPipelined copies r to f (whose offset is off) and to h. Content longer than one buffer is
// hashed on a second goroutine, while a core is free for it, as the next buffer is read and
// written: receiving, writing and sha256 each cost about a third of a big blob's time. hashed,
// when not nil, runs after each buffer (on the hashing goroutine) with the offset hashed so far
// (f holds at least that much by then); its error ends the copy. Whatever ends it, h has hashed
// exactly what was written to f. ctx is checked between reads.
func copyPipelined(ctx context.Context, f *os.File, off int64, h hash.Hash, r io.Reader, hashed func(int64) error) (int64, error) {
	first := bufPool.Get().(*[]byte)
	defer bufPool.Put(first)
	m, rerr := readFull(r, *first)
	if rerr == nil { // more than one buffer
		select {
		case pipeSlots <- struct{}{}:
			defer func() { <-pipeSlots }()
			return copyHashing(ctx, f, off, h, r, hashed, (*first)[:m])
		default:
		}
	}
	// One buffer, read, written and hashed in turn.
	var n int64
	buf := *first
	for {
		if m > 0 {
			k, err := f.Write(buf[:m])
			h.Write(buf[:k])
			n += int64(k)
			if err == nil && hashed != nil {
				err = hashed(off + n)
			}
			if err != nil {
				return n, err
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr = readFull(r, buf)
	}
}

// copyHashing is copyPipelined's two-goroutine copy; head was read from r already.
func copyHashing(ctx context.Context, f *os.File, off int64, h hash.Hash, r io.Reader, hashed func(int64) error, head []byte) (int64, error) {
	type chunk struct {
		b  []byte
		bp *[]byte // from pipePool, or nil for head
	}
	work := make(chan chunk, pipeBufs)
	free := make(chan *[]byte, pipeBufs)
	done := make(chan struct{})
	var herr atomic.Pointer[error]
	go func() {
		defer close(done)
		total := off
		for c := range work {
			h.Write(c.b) // everything written is hashed, even after an error
			total += int64(len(c.b))
			if hashed != nil && herr.Load() == nil {
				if err := hashed(total); err != nil {
					herr.Store(&err)
				}
			}
			if c.bp != nil {
				free <- c.bp
			}
		}
	}()

	var (
		n       int64
		err     error
		rerr    error
		b       = head
		bp      *[]byte
		owned   int
		written = off
		flushed = off
	)
	for {
		if len(b) > 0 {
			k, werr := f.Write(b)
			work <- chunk{b[:k], bp}
			n += int64(k)
			written += int64(k)
			if werr != nil {
				err = werr
				break
			}
			if written-flushed >= writebackEvery {
				_ = unix.SyncFileRange(int(f.Fd()), flushed, written-flushed, unix.SYNC_FILE_RANGE_WRITE)
				flushed = written
			}
		} else if bp != nil {
			pipePool.Put(bp)
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
		if herr.Load() != nil {
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if owned < pipeBufs {
			bp = pipePool.Get().(*[]byte)
			owned++
		} else {
			bp = <-free
		}
		var m int
		m, rerr = readFull(r, *bp)
		b = (*bp)[:m]
	}
	close(work)
	<-done // the head buffer is the caller's again
	for len(free) > 0 {
		pipePool.Put(<-free)
	}
	if p := herr.Load(); p != nil && err == nil {
		err = *p
	}
	return n, err
}

// readFull reads until buf is full, the content ends or reading fails. Unlike io.ReadFull it
// reports a short last buffer with the reader's own io.EOF.
func readFull(r io.Reader, buf []byte) (n int, err error) {
	for n < len(buf) && err == nil {
		var k int
		k, err = r.Read(buf[n:])
		n += k
	}
	return n, err
}
