package image

import (
	"os"
	"sync"
	"testing"
)

// TestParseConcurrent: the compiled schemas are shared; parsing from many goroutines at once
// (as the registry and copy do) must be safe (run with -race).
func TestParseConcurrent(t *testing.T) {
	m, err := os.ReadFile("testdata/valid/umoci-busybox.oci-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	x, err := os.ReadFile("testdata/valid/multiarch.oci-index.json")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := ParseManifest(descFor(MediaTypeManifest, m), m); err != nil {
					t.Error(err)
				}
				if _, err := ParseIndex(descFor(MediaTypeIndex, x), x); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
