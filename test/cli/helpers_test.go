//go:build integration

package cli

import (
	"github.com/wharfoci/wharf/internal/testutil"

	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// result is what one run of the wharf binary did.
type result = testutil.Result

// wharf runs the built binary ($WHARF_BIN/wharf) with args.
func wharf(t *testing.T, args ...string) result {
	t.Helper()
	return testutil.Exec(t, testutil.Bin(t, "wharf"), args...)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// testImage is a small valid image written by hand into an OCI layout.
type testImage struct {
	dir                        string
	layer, config, manifest    []byte
	layerD, configD, manifestD string
}

func (im *testImage) blobPath(d string) string {
	alg, enc, _ := strings.Cut(d, ":")
	return filepath.Join(im.dir, "blobs", alg, enc)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func desc(mt, d string, size int) map[string]any {
	return map[string]any{"mediaType": mt, "digest": d, "size": size}
}

// newTestImage writes a one-layer image tagged "latest" into dir/layout.
func newTestImage(t *testing.T, dir string) *testImage {
	t.Helper()
	im := &testImage{dir: filepath.Join(dir, "layout")}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	body := []byte("hello from a hand-made layer\n")
	if err := tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	im.layer, im.layerD = tb.Bytes(), sha(tb.Bytes())
	im.config = mustJSON(t, map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Env": []string{"PATH=/bin"}, "Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{im.layerD}},
	})
	im.configD = sha(im.config)
	im.writeManifest(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc("application/vnd.oci.image.config.v1+json", im.configD, len(im.config)),
		"layers":        []any{desc("application/vnd.oci.image.layer.v1.tar", im.layerD, len(im.layer))},
	})
	writeFile(t, filepath.Join(im.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`))
	writeFile(t, im.blobPath(im.layerD), im.layer)
	writeFile(t, im.blobPath(im.configD), im.config)
	return im
}

// writeManifest stores m as the manifest blob and points index.json's "latest" at it.
func (im *testImage) writeManifest(t *testing.T, m map[string]any) {
	t.Helper()
	im.manifest = mustJSON(t, m)
	im.manifestD = sha(im.manifest)
	writeFile(t, im.blobPath(im.manifestD), im.manifest)
	im.writeIndex(t, desc("application/vnd.oci.image.manifest.v1+json", im.manifestD, len(im.manifest)))
}

// writeIndex writes index.json with one entry, d, tagged "latest".
func (im *testImage) writeIndex(t *testing.T, d map[string]any) {
	t.Helper()
	d["annotations"] = map[string]string{"org.opencontainers.image.ref.name": "latest"}
	writeFile(t, filepath.Join(im.dir, "index.json"), mustJSON(t, map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{d},
	}))
}

// snapshot records every file under dir (path, mode, size, content hash) so that a test can
// prove that nothing outside a layout changed.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d", p, fi.Mode(), fi.Size())
		if fi.Mode().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %s", sha(c))
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
