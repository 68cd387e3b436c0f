package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// nSlices is the number of equal parts of the big blob pushed as blobs of their own by the
// concurrent push phase.
const nSlices = 16

const (
	mediaTypeManifest = ocispec.MediaTypeImageManifest
	mediaTypeConfig   = ocispec.MediaTypeImageConfig
	mediaTypeLayer    = ocispec.MediaTypeImageLayer
)

// dataset is the generated test data: DIR/big.bin (BigSize pseudo-random bytes, also read as
// nSlices equal slices) and DIR/small.bin (len(Small) layers of SmallSize bytes, end to end: the
// first half is pushed by the 1-client phase, the second by the concurrent one). meta.json
// holds the digests; it is written last.
type dataset struct {
	dir       string
	SizeMB    int             `json:"size_mb"`
	SmallN    int             `json:"small_n"`
	SmallKB   int             `json:"small_kb"`
	BigSize   int64           `json:"big_size"`
	Big       digest.Digest   `json:"big"`
	Slices    []digest.Digest `json:"slices"`
	SmallSize int64           `json:"small_size"`
	Small     []digest.Digest `json:"small"`
}

func (d *dataset) sliceSize() int64 { return d.BigSize / nSlices }
func (d *dataset) bigPath() string  { return filepath.Join(d.dir, "big.bin") }

// generate writes the data set into dir unless dir already holds one of these parameters, and
// reports whether it wrote it. The bytes are deterministic (ChaCha8 from fixed seeds) and
// incompressible.
func generate(dir string, sizeMB, smallN, smallKB int) (*dataset, bool, error) {
	if sizeMB < 1 || smallN < 1 || smallKB < 1 {
		return nil, false, fmt.Errorf("gen: -size-mb, -small-n and -small-kb must be at least 1")
	}
	if d, err := loadDataset(dir); err == nil && d.SizeMB == sizeMB && d.SmallN == smallN && d.SmallKB == smallKB {
		return d, false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	os.Remove(filepath.Join(dir, "meta.json"))
	d := &dataset{dir: dir, SizeMB: sizeMB, SmallN: smallN, SmallKB: smallKB,
		BigSize: int64(sizeMB) << 20, SmallSize: int64(smallKB) << 10}

	var err error
	d.Slices, err = writeChunks(d.bigPath(), "regbench big blob", nSlices, d.sliceSize())
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(d.bigPath())
	if err != nil {
		return nil, false, fmt.Errorf("read big blob: %w", err)
	}
	d.Big, err = digest.SHA256.FromReader(bufio.NewReaderSize(f, 1<<20))
	f.Close()
	if err != nil {
		return nil, false, fmt.Errorf("hash big blob: %w", err)
	}
	d.Small, err = writeChunks(filepath.Join(dir, "small.bin"), "regbench small layers", 2*smallN, d.SmallSize)
	if err != nil {
		return nil, false, err
	}
	b, _ := json.MarshalIndent(d, "", " ")
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), append(b, '\n'), 0o644); err != nil {
		return nil, false, fmt.Errorf("write meta.json: %w", err)
	}
	return d, true, nil
}

// writeChunks writes n chunks of size pseudo-random bytes (seeded by seed) to path, end to end,
// and returns each chunk's digest.
func writeChunks(path, seed string, n int, size int64) ([]digest.Digest, error) {
	var s [32]byte
	copy(s[:], seed)
	src := rand.NewChaCha8(s)
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	ds := make([]digest.Digest, n)
	for i := range ds {
		h := digest.SHA256.Digester()
		if _, err := io.CopyBuffer(io.MultiWriter(w, h.Hash()), io.LimitReader(src, size), buf); err != nil {
			return nil, fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
		ds[i] = h.Digest()
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return ds, f.Close()
}

// loadDataset reads DIR/meta.json and checks that the data files have the sizes it names.
func loadDataset(dir string) (*dataset, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		return nil, fmt.Errorf("read test data (run regbench gen): %w", err)
	}
	d := &dataset{dir: dir}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, "meta.json"), err)
	}
	if d.BigSize <= 0 || len(d.Slices) != nSlices || d.SmallSize <= 0 || len(d.Small) == 0 || len(d.Small)%2 != 0 {
		return nil, fmt.Errorf("%s: incomplete meta.json (run regbench gen again)", dir)
	}
	for name, size := range map[string]int64{"big.bin": d.BigSize, "small.bin": d.SmallSize * int64(len(d.Small))} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() != size {
			return nil, fmt.Errorf("%s: %s is missing or of the wrong size (run regbench gen again)", dir, name)
		}
	}
	return d, nil
}

// smallImage is one small image: a layer, its config and the manifest naming both.
type smallImage struct {
	layer, config      ocispec.Descriptor
	configBody         []byte
	manifest           []byte
	manifestDigest     digest.Digest
	layerOff, layerLen int64 // the layer's bytes in small.bin
}

// smallImages returns the small images of the data set, in order: each has a config of its own
// (its diff_id is the layer's digest) and a manifest of one uncompressed layer.
func (d *dataset) smallImages() []smallImage {
	imgs := make([]smallImage, len(d.Small))
	for i, ld := range d.Small {
		cfg, _ := json.Marshal(ocispec.Image{
			Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{ld}},
		})
		im := smallImage{
			layer:      ocispec.Descriptor{MediaType: mediaTypeLayer, Digest: ld, Size: d.SmallSize},
			config:     ocispec.Descriptor{MediaType: mediaTypeConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
			configBody: cfg,
			layerOff:   int64(i) * d.SmallSize,
			layerLen:   d.SmallSize,
		}
		m := ocispec.Manifest{MediaType: mediaTypeManifest, Config: im.config, Layers: []ocispec.Descriptor{im.layer}}
		m.SchemaVersion = 2
		im.manifest, _ = json.Marshal(m)
		im.manifestDigest = digest.FromBytes(im.manifest)
		imgs[i] = im
	}
	return imgs
}
