//go:build integration

package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHostileLayouts feeds wharf layouts that break the rules in the ways an attacker would and
// checks that every command refuses them with one clear line on stderr, a non-zero exit code,
// and nothing changed outside the layout.
func TestHostileLayouts(t *testing.T) {
	tests := []struct {
		name string
		// mutate breaks the image; base is the directory holding the layout and the canaries.
		mutate func(t *testing.T, im *testImage, base string)
		// want matches the one-line error of `wharf validate` (case-insensitive regexp).
		want string
		// inspectOK: the damage is in a blob inspect does not read (a layer); inspect may succeed.
		inspectOK bool
	}{
		{
			name: "index.json digest escaping the layout",
			mutate: func(t *testing.T, im *testImage, base string) {
				im.writeIndex(t, desc("application/vnd.oci.image.manifest.v1+json", "sha256:../../../canary", 7))
			},
			want: `invalid digest`,
		},
		{
			name: "layer digest sha256:../../x",
			mutate: func(t *testing.T, im *testImage, base string) {
				writeFile(t, filepath.Join(im.dir, "x"), im.layer) // inside, but not a blob
				im.writeManifest(t, map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config": desc("application/vnd.oci.image.config.v1+json", im.configD, len(im.config)),
					"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", "sha256:../../x", len(im.layer))},
				})
			},
			want: `invalid digest`,
		},
		{
			name: "layer blob is a symlink to a file outside",
			mutate: func(t *testing.T, im *testImage, base string) {
				outside := filepath.Join(base, "outside", "layer")
				writeFile(t, outside, im.layer) // same bytes: only the symlink is wrong
				p := im.blobPath(im.layerD)
				os.Remove(p)
				if err := os.Symlink(outside, p); err != nil {
					t.Fatal(err)
				}
			},
			want: `symlink|unsafe path`, inspectOK: true,
		},
		{
			name: "blobs/sha256 is a symlink to a directory outside",
			mutate: func(t *testing.T, im *testImage, base string) {
				dir := filepath.Join(im.dir, "blobs", "sha256")
				outside := filepath.Join(base, "outside", "blobs")
				if err := os.Rename(dir, outside); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(outside, dir); err != nil {
					t.Fatal(err)
				}
			},
			want: `symlink|unsafe path`,
		},
		{
			name: "negative layer size",
			mutate: func(t *testing.T, im *testImage, base string) {
				im.writeManifest(t, map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config": desc("application/vnd.oci.image.config.v1+json", im.configD, len(im.config)),
					"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", im.layerD, -1)},
				})
			},
			want: `size|negative`,
		},
		{
			name: "layer size disagrees with the blob",
			mutate: func(t *testing.T, im *testImage, base string) {
				im.writeManifest(t, map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config": desc("application/vnd.oci.image.config.v1+json", im.configD, len(im.config)),
					"layers": []any{desc("application/vnd.oci.image.layer.v1.tar", im.layerD, len(im.layer)+1)},
				})
			},
			want: `size`, inspectOK: true,
		},
		{
			name: "layer content does not match its digest",
			mutate: func(t *testing.T, im *testImage, base string) {
				bad := append([]byte(nil), im.layer...)
				bad[len(bad)/2] ^= 0xff
				p := im.blobPath(im.layerD)
				os.Chmod(p, 0o644)
				writeFile(t, p, bad)
			},
			want: `digest mismatch|hashes to`, inspectOK: true,
		},
		{
			name: "manifest with both layers and manifests",
			mutate: func(t *testing.T, im *testImage, base string) {
				im.writeManifest(t, map[string]any{
					"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
					"config":    desc("application/vnd.oci.image.config.v1+json", im.configD, len(im.config)),
					"layers":    []any{desc("application/vnd.oci.image.layer.v1.tar", im.layerD, len(im.layer))},
					"manifests": []any{desc("application/vnd.oci.image.manifest.v1+json", im.configD, len(im.config))},
				})
			},
			want: `manifests|ambiguous`,
		},
		{
			name: "descriptor says index, document is a manifest",
			mutate: func(t *testing.T, im *testImage, base string) {
				im.writeIndex(t, desc("application/vnd.oci.image.index.v1+json", im.manifestD, len(im.manifest)))
			},
			want: `media ?type|mediaType`,
		},
		{
			name: "index.json of 100 MiB",
			mutate: func(t *testing.T, im *testImage, base string) {
				p := filepath.Join(im.dir, "index.json")
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(`{"schemaVersion":2,"manifests":[`)
				if err := f.Truncate(100 << 20); err != nil { // sparse: cheap to make
					t.Fatal(err)
				}
				f.Close()
			},
			want: `too large|limit`,
		},
	}
	// Progress lines (copy) may come first; the error is the one "wharf: " line, and the last.
	oneLine := regexp.MustCompile(`^((copied|skipped|mounted) [^\n]*\n)*wharf: [^\n]+\n$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			writeFile(t, filepath.Join(base, "canary"), []byte("canary\n"))
			writeFile(t, filepath.Join(base, "x"), []byte("x\n"))
			writeFile(t, filepath.Join(base, "outside", "keep"), []byte("keep\n"))
			im := newTestImage(t, base)
			tc.mutate(t, im, base)
			dst := filepath.Join(base, "dst")
			outside := func() string {
				var keep []string
				for _, l := range strings.Split(snapshot(t, base), "\n") {
					if !strings.HasPrefix(l, im.dir) && !strings.HasPrefix(l, dst) {
						keep = append(keep, l)
					}
				}
				return strings.Join(keep, "\n")
			}
			before := outside()
			want := regexp.MustCompile("(?i)" + tc.want)
			src := "oci:" + im.dir + ":latest"
			for _, args := range [][]string{
				{"validate", src},
				{"inspect", src},
				{"inspect", "--raw", src},
				{"copy", src, "oci:" + dst + ":latest"},
				{"copy", src, "oci-archive:" + dst + ".tar:latest"},
			} {
				r := wharf(t, args...)
				if r.Code == 0 && args[0] == "inspect" && tc.inspectOK {
					continue
				}
				if r.Code == 0 {
					t.Errorf("wharf %s: exit 0, want an error\nstdout: %.300s", args[0], r.Stdout)
					continue
				}
				if !oneLine.MatchString(r.Stderr) {
					t.Errorf("wharf %s: stderr is not one \"wharf: \" line: %q", args[0], r.Stderr)
				}
				if args[0] == "validate" && !want.MatchString(r.Stderr) {
					t.Errorf("wharf validate: error %q does not match %q", strings.TrimSpace(r.Stderr), tc.want)
				}
				t.Logf("wharf %s → exit %d: %s", strings.Join(args[:1], " "), r.Code, strings.TrimSpace(r.Stderr))
			}
			if after := outside(); after != before {
				t.Errorf("files outside the layout changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// A failed copy leaves no tag behind in the destination.
			if b, err := os.ReadFile(filepath.Join(dst, "index.json")); err == nil && strings.Contains(string(b), `"latest"`) {
				t.Errorf("failed copy tagged the destination: %s", b)
			}
		})
	}
}

// TestValidImage is the control for TestHostileLayouts: the unmodified image passes.
func TestValidImage(t *testing.T) {
	base := t.TempDir()
	im := newTestImage(t, base)
	src := "oci:" + im.dir + ":latest"
	for _, args := range [][]string{
		{"validate", src},
		{"inspect", src},
		{"copy", src, "oci:" + filepath.Join(base, "dst") + ":latest"},
		{"validate", "oci:" + filepath.Join(base, "dst") + ":latest"},
	} {
		if r := wharf(t, args...); r.Code != 0 {
			t.Fatalf("wharf %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
		}
	}
}

// TestUsageErrors checks exit code 2 and the one-line error for malformed invocations.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"unknown command", []string{"nosuch"}, 2},
		{"missing argument", []string{"inspect"}, 2},
		{"malformed image name", []string{"inspect", "/no/transport"}, 2},
		{"bad digest in name", []string{"inspect", "oci:x@sha256:zz"}, 2},
		{"missing layout", []string{"inspect", "oci:/nonexistent/wharf/layout:latest"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := wharf(t, tc.args...)
			if r.Code != tc.code || !strings.HasPrefix(r.Stderr, "wharf: ") || strings.Count(r.Stderr, "\n") != 1 {
				t.Fatalf("exit %d (want %d), stderr %q", r.Code, tc.code, r.Stderr)
			}
		})
	}
}
