package copy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image/copy"
	"github.com/wharfoci/wharf/image/layout"
)

// Copy one platform of an image from a layout into an oci-archive file.
func ExampleCopy_layoutToArchive() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	src, _ := layout.Init(filepath.Join(dir, "src"))
	defer src.Close()
	cfg, _ := content.PushBytes(ctx, src, ocispec.MediaTypeImageConfig,
		[]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	man, _ := content.PushBytes(ctx, src, ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2,`+
		`"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"`+cfg.MediaType+
		`","digest":"`+cfg.Digest.String()+`","size":`+fmt.Sprint(cfg.Size)+`},"layers":[]}`))
	_ = src.Tag(ctx, man, "v1")

	dst, _ := layout.OpenArchive(ctx, filepath.Join(dir, "image.tar"), layout.ArchiveOptions{Create: true})
	defer dst.Close()
	root, err := copy.Copy(ctx, src, "v1", dst, "latest", copy.Options{
		Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Progress: func(p copy.Progress) {
			if p.State == copy.Copied {
				fmt.Println("copied", p.Descriptor.MediaType)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := dst.Save(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(root.Digest == man.Digest)
	// Output:
	// copied application/vnd.oci.image.config.v1+json
	// copied application/vnd.oci.image.manifest.v1+json
	// true
}
