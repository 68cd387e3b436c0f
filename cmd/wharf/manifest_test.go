package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestManifestCreate: two single-platform images become an index with their platforms, in a
// new layout; an index member is nested; bad input is refused with nothing tagged.
func TestManifestCreate(t *testing.T) {
	f := newFixture(t)
	dst := filepath.Join(t.TempDir(), "multi")
	out := mustRun(t, "manifest", "create", "--annotation", "k=v", "oci:"+dst+":both",
		"oci:"+f.dir+"@"+f.manifest.Digest.String(), "oci:"+f.dir+"@"+f.otherManifest.Digest.String())
	dg := strings.TrimSpace(out)
	var idx ocispec.Index
	if err := json.Unmarshal([]byte(mustRun(t, "inspect", "--raw", "oci:"+dst+":both")), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != f.manifest.Digest || idx.Manifests[1].Platform.Architecture != f.otherArch ||
		idx.Annotations["k"] != "v" {
		t.Fatalf("index = %+v", idx)
	}
	mustRun(t, "validate", "oci:"+dst+":both")
	if !strings.Contains(mustRun(t, "ls", "oci:"+dst), dg) {
		t.Errorf("ls does not list %s", dg)
	}
	mustRun(t, "manifest", "create", "oci:"+dst+":nested", "oci:"+dst+":both")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"one argument", []string{"manifest", "create", "oci:" + dst + ":x"}, exitUsage, "at least 2"},
		{"same platform twice", []string{"manifest", "create", "oci:" + dst + ":x", "oci:" + f.dir + ":latest", "oci:" + f.dir + ":latest"}, exitFailure, "are both linux/"},
		{"digest destination", []string{"manifest", "create", "oci:" + dst + "@" + f.manifest.Digest.String(), "oci:" + f.dir + ":latest"}, exitUsage, "named by a tag"},
		{"missing image", []string{"manifest", "create", "oci:" + dst + ":x", "oci:" + f.dir + ":nosuch"}, exitNotFound, "nosuch"},
		{"bad annotation", []string{"manifest", "create", "--annotation", "novalue", "oci:" + dst + ":x", "oci:" + f.dir + ":latest"}, exitUsage, "KEY=VALUE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.code, tc.want)
			if c, _, _ := wharfRun(t, "inspect", "--raw", "oci:"+dst+":x"); c != exitNotFound {
				t.Errorf("x exists after a refused create (inspect exit %d)", c)
			}
		})
	}
}
