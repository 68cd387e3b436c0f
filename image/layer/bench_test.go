package layer

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wharfoci/wharf/internal/rootfs"
)

// BenchmarkApplyBlob applies the layer blob $WHARF_BENCH_LAYER (gzip) to a fresh directory
// under $WHARF_BENCH_DIR (default: the test's temp dir).
func BenchmarkApplyBlob(b *testing.B) {
	blob := os.Getenv("WHARF_BENCH_LAYER")
	if blob == "" {
		b.Skip("WHARF_BENCH_LAYER not set")
	}
	base := os.Getenv("WHARF_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(base, "apply")
		os.RemoveAll(dir)
		os.Mkdir(dir, 0755)
		f, err := os.Open(blob)
		if err != nil {
			b.Fatal(err)
		}
		r, err := rootfs.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Apply(context.Background(), r, f, "application/vnd.oci.image.layer.v1.tar+gzip", Options{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		r.Close()
		f.Close()
	}
	os.RemoveAll(filepath.Join(base, "apply"))
}
