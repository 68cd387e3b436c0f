package layer

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	digest "github.com/opencontainers/go-digest"
)

// Default limits for one layer. They are far above any real image and low enough that a
// decompression or inode bomb ends with an error before it fills a disk. A sparse file's holes
// are not written (see sparse.go), so they cost neither disk nor limit: its data does.
const (
	DefaultMaxBytes      = 32 << 30 // uncompressed bytes (tar stream, and file contents written)
	DefaultMaxRatio      = 1000     // uncompressed / compressed
	DefaultRatioFloor    = 256 << 20
	DefaultMaxEntries    = 1 << 20
	DefaultMaxNameLength = 4096 // PATH_MAX; each component is also held to NAME_MAX (255)
)

// Limits bounds what one layer may do. A zero field takes its default; a negative field
// disables that limit.
type Limits struct {
	// MaxBytes caps the uncompressed tar stream and, separately, the file contents written
	// (a sparse file counts its data, not its holes, which are left unwritten; zeros stored
	// in a plain entry are written and count).
	MaxBytes int64
	// MaxRatio caps uncompressed bytes (of the stream, and of the file contents written) per
	// compressed byte once RatioFloor bytes are out.
	MaxRatio int64
	// RatioFloor is the uncompressed size below which the ratio is not checked.
	RatioFloor int64
	// MaxEntries caps the number of tar entries (whiteouts and skipped entries included).
	MaxEntries int64
	// MaxNameLength caps the length of an entry name and of a link target.
	MaxNameLength int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		} else if *v < 0 {
			*v = 1<<63 - 1
		}
	}
	def(&l.MaxBytes, DefaultMaxBytes)
	def(&l.MaxRatio, DefaultMaxRatio)
	def(&l.RatioFloor, DefaultRatioFloor)
	def(&l.MaxEntries, DefaultMaxEntries)
	if l.MaxNameLength == 0 {
		l.MaxNameLength = DefaultMaxNameLength
	} else if l.MaxNameLength < 0 {
		l.MaxNameLength = 1<<31 - 1
	}
	return l
}

// Options control Apply.
type Options struct {
	Limits Limits
	// DiffID, when set, is the digest the uncompressed stream must hash to (the image config's
	// rootfs.diff_ids entry). A mismatch is an error wrapping errdef.ErrDigestMismatch, reported
	// after the layer has been applied: the caller discards the root it applied it to.
	DiffID digest.Digest
	// UIDMap and GIDMap shift the owners recorded in the layer (container IDs) to host IDs,
	// as a user-namespaced runtime will see them. An ID outside every range is an error.
	UIDMap, GIDMap []specs.LinuxIDMapping
}

// Stats describes an applied layer.
type Stats struct {
	// DiffID is the sha256 digest of the uncompressed tar stream.
	DiffID digest.Digest
	// Entries counts tar entries, Bytes the uncompressed stream.
	Entries, Bytes int64
}
