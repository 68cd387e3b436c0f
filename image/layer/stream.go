package layer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// maxZstdWindow bounds the memory a zstd frame may ask for.
const maxZstdWindow = 64 << 20

// countingReader counts the compressed bytes read, for the ratio limit.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Decompress returns the uncompressed tar stream of a layer blob of media type mediaType. The
// compression is taken from the media type and checked against the stream's magic bytes
// (Docker media types, often mislabelled, are detected from the magic instead).
func Decompress(r io.Reader, mediaType string) (io.ReadCloser, error) {
	comp, ok := image.LayerCompression(mediaType)
	if !ok {
		return nil, fmt.Errorf("apply layer: media type %q: %w: not a layer", mediaType, errdef.ErrUnsupported)
	}
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(4)
	var found image.Compression
	switch {
	case bytes.HasPrefix(head, magicGzip):
		found = image.Gzip
	case bytes.HasPrefix(head, magicZstd):
		found = image.Zstd
	default:
		found = image.Uncompressed
	}
	if found != comp {
		if !image.IsDocker(mediaType) {
			return nil, fmt.Errorf("apply layer: %w: media type %s says %s, the content is %s", errdef.ErrInvalidArgument, mediaType, comp, found)
		}
		comp = found
	}
	switch comp {
	case image.Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("apply layer: read gzip header: %w: %v", errdef.ErrInvalidArgument, err)
		}
		return zr, nil
	case image.Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("apply layer: open zstd stream: %w: %v", errdef.ErrInvalidArgument, err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

const (
	chunkSize = 512 << 10
	chunks    = 6
)

// pipe decompresses in its own goroutine, a few chunks ahead of the applier, so that
// decompression runs on one core while the diffID hash and file writes run on the other. It enforces the byte and ratio limits
// on the uncompressed stream.
type pipe struct {
	full  chan []byte
	free  chan []byte
	done  chan struct{}
	exit  chan struct{} // closed when the producer has returned
	cur   []byte
	buf   []byte
	err   error // producer's terminal error, readable once full is closed
	perr  error // consumer-side terminal error
	n     int64
	h     hash.Hash
	comp  *countingReader
	lim   Limits
	extra func() int64 // bytes written to files (for the sparse-bomb check)
}

func newPipe(src io.Reader, comp *countingReader, lim Limits) *pipe {
	p := &pipe{
		full: make(chan []byte, chunks),
		free: make(chan []byte, chunks),
		done: make(chan struct{}),
		exit: make(chan struct{}),
		h:    sha256.New(),
		comp: comp,
		lim:  lim,
	}
	for i := 0; i < chunks; i++ {
		p.free <- make([]byte, chunkSize)
	}
	go p.produce(src)
	return p
}

func (p *pipe) produce(src io.Reader) {
	defer close(p.exit)
	defer close(p.full)
	for {
		var b []byte
		select {
		case b = <-p.free:
		case <-p.done:
			return
		}
		n, err := io.ReadFull(src, b[:cap(b)])
		if n > 0 {
			select {
			case p.full <- b[:n]:
			case <-p.done:
				return
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			p.err = io.EOF
			return
		}
		if err != nil {
			p.err = err
			return
		}
	}
}

func (p *pipe) Read(b []byte) (int, error) {
	if p.perr != nil {
		return 0, p.perr
	}
	if len(p.cur) == 0 {
		if p.buf != nil {
			p.free <- p.buf[:cap(p.buf)]
			p.buf = nil
		}
		c, ok := <-p.full
		if !ok {
			p.perr = p.err
			if p.perr == nil {
				p.perr = io.EOF
			}
			if p.perr != io.EOF {
				p.perr = fmt.Errorf("decompress layer: %w", p.perr)
			}
			return 0, p.perr
		}
		p.buf, p.cur = c, c
		p.n += int64(len(c))
		// Hashing here rather than in the producer splits the work between two cores:
		// decompression there, hashing and file writes here.
		p.h.Write(c)
		if err := p.check(p.n); err != nil {
			p.perr = err
			return 0, err
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// offset is the number of uncompressed bytes read so far.
func (p *pipe) offset() int64 { return p.n - int64(len(p.cur)) }

// check enforces MaxBytes and MaxRatio on out uncompressed bytes.
func (p *pipe) check(out int64) error {
	if out > p.lim.MaxBytes {
		return fmt.Errorf("%w: layer expands to more than %d bytes (limit)", errdef.ErrTooLarge, p.lim.MaxBytes)
	}
	if out > p.lim.RatioFloor {
		if c := p.comp.n.Load(); c > 0 && out/c > p.lim.MaxRatio {
			return fmt.Errorf("%w: layer expands more than %d times its compressed size (%d bytes from %d)", errdef.ErrTooLarge, p.lim.MaxRatio, out, c)
		}
	}
	return nil
}

// drain reads the rest of the uncompressed stream (tar padding, trailing blocks) so the diffID
// covers it all.
func (p *pipe) drain() error {
	for {
		if len(p.cur) > 0 {
			p.cur = nil
		}
		var one [1]byte
		_, err := p.Read(one[:])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// close stops the producer and waits until it no longer reads its source.
func (p *pipe) close() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	<-p.exit
}
