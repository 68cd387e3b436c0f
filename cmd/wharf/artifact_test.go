package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArtifactCmds drives push → discover → attach → pull on a layout, in-process.
func TestArtifactCmds(t *testing.T) {
	dir := t.TempDir()
	lay := "oci:" + filepath.Join(dir, "lay")
	f := filepath.Join(dir, "notes.txt")
	os.WriteFile(f, []byte("notes\n"), 0o644)
	t.Setenv("SOURCE_DATE_EPOCH", "0")
	base := strings.TrimSpace(mustRun(t, "artifact", "push", "-q", lay+":base"))
	att := strings.TrimSpace(mustRun(t, "artifact", "attach", "-q", "--artifact-type", "application/vnd.example.notes", "-a", "k=v", lay+":base", f+":text/plain"))
	if !strings.HasPrefix(base, "sha256:") || !strings.HasPrefix(att, "sha256:") || att == base {
		t.Fatalf("digests %q %q", base, att)
	}
	if out := mustRun(t, "--json", "artifact", "discover", lay+":base"); !strings.Contains(out, att) || !strings.Contains(out, `"artifactType": "application/vnd.example.notes"`) {
		t.Fatalf("discover --json: %s", out)
	}
	out := filepath.Join(dir, "out")
	mustRun(t, "artifact", "pull", "-q", "-o", out, lay+"@"+att)
	if b, err := os.ReadFile(filepath.Join(out, "notes.txt")); err != nil || string(b) != "notes\n" {
		t.Fatalf("pulled %q %v", b, err)
	}
}

func TestArtifactCmdUsage(t *testing.T) {
	dir := t.TempDir()
	lay := "oci:" + filepath.Join(dir, "lay")
	mustRun(t, "artifact", "push", "-q", lay+":base")
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("f"), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"attach without type", []string{"artifact", "attach", lay + ":base"}, 2, "--artifact-type"},
		{"push to a digest", []string{"artifact", "push", lay + "@sha256:" + strings.Repeat("a", 64)}, 2, "not a digest"},
		{"bad annotation", []string{"artifact", "push", "-a", "novalue", lay + ":x"}, 2, "KEY=VALUE"},
		{"missing file", []string{"artifact", "push", lay + ":x", filepath.Join(dir, "nope")}, 1, "no such file"},
		{"bad media type", []string{"artifact", "push", lay + ":x", f + ":text/"}, 1, "not a media type"},
		{"pull unknown tag", []string{"artifact", "pull", "-o", filepath.Join(dir, "o"), lay + ":nope"}, 3, "not found"},
		{"discover missing layout", []string{"artifact", "discover", "oci:" + filepath.Join(dir, "none") + ":x"}, 3, "not found"},
		{"pull an artifact without titles", []string{"artifact", "pull", "-o", filepath.Join(dir, "o"), lay + ":base"}, 3, "no layer has a title"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := wharfRun(t, tc.args...)
			assertOneLineError(t, code, stderr, tc.code, tc.want)
		})
	}
}
