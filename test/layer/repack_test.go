//go:build integration

package layer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRepackUmociAgrees: an image repacked by wharf after changes of every kind unpacks, with
// umoci and with wharf, to the changed tree.
func TestRepackUmociAgrees(t *testing.T) {
	need(t, "umoci")
	bin := wharfBin(t)
	src := testImage(t, "busybox")
	for _, comp := range []string{"gzip", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			work := t.TempDir()
			layout := filepath.Join(work, "layout")
			run(t, "cp", "-a", src, layout)
			b := filepath.Join(work, "bundle")
			run(t, bin, "unpack", "oci:"+layout+":latest", b)
			r := filepath.Join(b, "rootfs")
			j := func(p string) string { return filepath.Join(r, p) }
			must := func(err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(os.WriteFile(j("etc/added"), []byte("new file\n"), 0640))
			must(os.Chown(j("etc/added"), 1000, 1000))
			must(os.WriteFile(j("etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0644))
			must(os.Remove(j("bin/ls")))
			must(os.RemoveAll(j("root")))
			must(os.MkdirAll(j("root/.config/app"), 0700))
			must(os.WriteFile(j("root/.config/app/x"), []byte("x"), 0600))
			must(os.RemoveAll(j("etc") + "/group"))
			must(os.Chmod(j("bin/busybox"), 04755))
			must(os.Remove(j("bin/cat")))
			must(os.Symlink("/nowhere", j("bin/cat")))
			must(os.Link(j("etc/added"), j("etc/added-link")))
			must(os.MkdirAll(j("opt/deep/er"), 0755))
			must(unix.Mkfifo(j("opt/fifo"), 0600))
			must(os.RemoveAll(j("run")))
			run(t, bin, "repack", "--compress", comp, b, "oci:"+layout+":v2")
			want := describe(t, r)
			wb, ub := filepath.Join(work, "w2"), filepath.Join(work, "u2")
			run(t, bin, "unpack", "oci:"+layout+":v2", wb)
			compareTrees(t, "wharf unpack of the repacked image vs the changed bundle", describe(t, filepath.Join(wb, "rootfs")), want)
			if comp == "zstd" {
				return // umoci 0.4.7 does not read zstd layers
			}
			run(t, "umoci", "unpack", "--image", layout+":v2", ub)
			compareTrees(t, "umoci unpack of the repacked image vs the changed bundle", describe(t, filepath.Join(ub, "rootfs")), want)
			// a second repack with no change adds an empty layer and still agrees
			run(t, bin, "repack", b, "oci:"+layout+":v3")
			ub3 := filepath.Join(work, "u3")
			run(t, "umoci", "unpack", "--image", layout+":v3", ub3)
			compareTrees(t, "umoci unpack after a repack without changes", describe(t, filepath.Join(ub3, "rootfs")), want)
		})
	}
}
