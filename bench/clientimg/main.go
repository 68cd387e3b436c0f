// Command clientimg writes an OCI image layout holding one image of one uncompressed layer of
// SIZE_MB pseudo-random (incompressible, deterministic) bytes, tagged latest: the "1 GiB
// single-layer image" of bench/client.sh and the 256 MiB blob of test/client's fault test.
//
//	go run ./bench/clientimg OUT_LAYOUT SIZE_MB
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
	"github.com/wharfoci/wharf/image/layout"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: clientimg OUT_LAYOUT SIZE_MB")
		os.Exit(2)
	}
	mb, err := strconv.ParseInt(os.Args[2], 10, 64)
	if err != nil || mb <= 0 {
		fmt.Fprintln(os.Stderr, "clientimg: SIZE_MB must be a positive number")
		os.Exit(2)
	}
	d, err := Write(context.Background(), os.Args[1], mb<<20)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clientimg:", err)
		os.Exit(1)
	}
	fmt.Printf("RESULT clientimg layout=%s manifest=%s layer_bytes=%d\n", os.Args[1], d.Digest, mb<<20)
}

// Write creates the layout dir with the image and returns its manifest descriptor.
func Write(ctx context.Context, dir string, size int64) (ocispec.Descriptor, error) {
	l, err := layout.Init(dir)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer l.Close()
	h := digest.SHA256.Digester()
	if _, err := io.Copy(h.Hash(), Stream(size)); err != nil {
		return ocispec.Descriptor{}, err
	}
	layer := ocispec.Descriptor{MediaType: image.MediaTypeLayer, Digest: h.Digest(), Size: size}
	if err := l.Push(ctx, layer, Stream(size)); err != nil {
		return ocispec.Descriptor{}, err
	}
	cfg, _ := json.Marshal(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}})
	cd, err := content.PushBytes(ctx, l, image.MediaTypeConfig, cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{MediaType: image.MediaTypeManifest, Config: cd, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	md, err := content.PushBytes(ctx, l, image.MediaTypeManifest, mb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return md, l.Tag(ctx, md, "latest")
}

// Stream returns size deterministic pseudo-random bytes.
func Stream(size int64) io.Reader {
	var seed [32]byte
	copy(seed[:], "wharf bench/clientimg seed......")
	return io.LimitReader(rand.NewChaCha8(seed), size)
}
