package content

import (
	"bytes"
	"context"
	"fmt"
	"hash"
	"io"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// MaxDocumentSize caps a JSON document (manifest, index, config, index.json) read into memory,
// as distribution-spec recommends for manifests. Larger documents are refused before decoding.
const MaxDocumentSize = 4 << 20

// ValidateDigest checks d against the OCI digest grammar for a registered algorithm this
// implementation supports: sha256 (64) or sha512 (128) lowercase hex characters. It must be
// called before a digest is used to build a path.
func ValidateDigest(d digest.Digest) error {
	s := string(d)
	i := -1
	for j := 0; j < len(s); j++ {
		if s[j] == ':' {
			i = j
			break
		}
	}
	if i <= 0 {
		return fmt.Errorf("%q: %w: no algorithm", s, errdef.ErrInvalidDigest)
	}
	alg, hex := s[:i], s[i+1:]
	var want int
	switch alg {
	case "sha256":
		want = 64
	case "sha512":
		want = 128
	default:
		return fmt.Errorf("%q: %w: algorithm %q is not supported (sha256, sha512)", s, errdef.ErrInvalidDigest, alg)
	}
	if len(hex) != want {
		return fmt.Errorf("%q: %w: %s needs %d hex characters, got %d", s, errdef.ErrInvalidDigest, alg, want, len(hex))
	}
	for j := 0; j < len(hex); j++ {
		c := hex[j]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%q: %w: encoded part must be lowercase hex", s, errdef.ErrInvalidDigest)
		}
	}
	return nil
}

// ValidateDescriptor checks what every descriptor must satisfy before its content is touched:
// a valid digest, a size that is not negative, and embedded data (if any) of exactly that size
// and digest.
func ValidateDescriptor(d ocispec.Descriptor) error {
	if err := ValidateDigest(d.Digest); err != nil {
		return err
	}
	if d.Size < 0 {
		return fmt.Errorf("%s: %w: size %d is negative", d.Digest, errdef.ErrInvalidSize, d.Size)
	}
	if d.Data != nil {
		if int64(len(d.Data)) != d.Size {
			return fmt.Errorf("%s: data field: %w: %d bytes, descriptor says %d", d.Digest, errdef.ErrSizeMismatch, len(d.Data), d.Size)
		}
		if got := d.Digest.Algorithm().FromBytes(d.Data); got != d.Digest {
			return fmt.Errorf("%s: data field: %w: data hashes to %s", d.Digest, errdef.ErrDigestMismatch, got)
		}
	}
	return nil
}

// verifyReader passes through exactly size bytes and fails at the end if they do not hash to
// the expected digest, or if the source is shorter or longer.
type verifyReader struct {
	r        io.Reader
	h        hash.Hash
	expected ocispec.Descriptor
	left     int64
	err      error
}

// NewVerifyReader wraps r so that reading it to EOF succeeds only if r yields exactly d.Size
// bytes hashing to d.Digest: otherwise the final Read returns an error wrapping
// errdef.ErrSizeMismatch or errdef.ErrDigestMismatch instead of io.EOF. d must have passed
// ValidateDescriptor.
func NewVerifyReader(r io.Reader, d ocispec.Descriptor) io.Reader {
	return &verifyReader{r: r, h: d.Digest.Algorithm().Hash(), expected: d, left: d.Size}
}

// Verifies reports whether r came from NewVerifyReader for d's digest and size (and was not
// wrapped since): reading it to EOF already proves the content. Pushers that hash to verify
// use it to avoid hashing every byte twice.
func Verifies(r io.Reader, d ocispec.Descriptor) bool {
	v, ok := r.(*verifyReader)
	return ok && v.expected.Digest == d.Digest && v.expected.Size == d.Size && v.left == d.Size
}

// VerifiedSource returns the reader under r when r came from NewVerifyReader for d's digest and
// size and nothing was read from it yet. A pusher that hashes what it stores anyway, and checks
// the size and digest against d itself, reads that instead and hashes every byte once.
func VerifiedSource(r io.Reader, d ocispec.Descriptor) (io.Reader, bool) {
	if !Verifies(r, d) {
		return r, false
	}
	return r.(*verifyReader).r, true
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.left == 0 {
		v.err = v.finish()
		return 0, v.err
	}
	if int64(len(p)) > v.left {
		p = p[:v.left]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.left -= int64(n)
	if err == io.EOF {
		if v.left > 0 {
			v.err = fmt.Errorf("%s: %w: content ended %d bytes short of %d", v.expected.Digest, errdef.ErrSizeMismatch, v.left, v.expected.Size)
			return n, v.err
		}
		err = nil
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifyReader) finish() error {
	var one [1]byte
	if n, _ := io.ReadFull(v.r, one[:]); n > 0 {
		return fmt.Errorf("%s: %w: content is longer than %d bytes", v.expected.Digest, errdef.ErrSizeMismatch, v.expected.Size)
	}
	got := digest.NewDigest(v.expected.Digest.Algorithm(), v.h)
	if got != v.expected.Digest {
		return fmt.Errorf("%s: %w: content hashes to %s", v.expected.Digest, errdef.ErrDigestMismatch, got)
	}
	return io.EOF
}

// ReadAll fetches d from f and returns its bytes once they are verified. Descriptors larger than
// limit (MaxDocumentSize when limit ≤ 0) are refused before anything is read. Embedded data
// (d.Data) is used instead of fetching when present.
func ReadAll(ctx context.Context, f Fetcher, d ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := ValidateDescriptor(d); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = MaxDocumentSize
	}
	if d.Size > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes is over the %d byte limit", d.Digest, errdef.ErrTooLarge, d.Size, limit)
	}
	if d.Data != nil {
		return bytes.Clone(d.Data), nil
	}
	rc, err := f.Fetch(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, 0, d.Size)
	w := bytes.NewBuffer(buf)
	if _, err := io.Copy(w, NewVerifyReader(rc, d)); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// PushBytes stores b under the descriptor it returns (digest algorithm sha256).
func PushBytes(ctx context.Context, p Pusher, mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	return d, p.Push(ctx, d, bytes.NewReader(b))
}
