package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNewUnpackRepackConfig drives new → unpack → change → repack → config → unpack in-process.
func TestNewUnpackRepackConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	img := "oci:" + filepath.Join(dir, "img")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	mustRun(t, "new", img+":base")
	b := filepath.Join(dir, "b")
	mustRun(t, "unpack", img+":base", b)
	if err := os.WriteFile(filepath.Join(b, "rootfs", "hello"), []byte("hi\n"), 0644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "--json", "repack", "--compress", "zstd", b, img+":v1")
	var rr repackResult
	if err := json.Unmarshal([]byte(out), &rr); err != nil || rr.Changes != 2 {
		t.Fatalf("repack --json: %q %v", out, err)
	}
	mustRun(t, "config", img+":v1", "--entrypoint", "/bin/sh", "--cmd", "-c", "--cmd", "echo hi", "--env", "A=1",
		"--workdir", "/srv", "--user", "0:0", "--label", "k=v", "--port", "8080", "--volume", "/data", "--stop-signal", "SIGINT")
	b2 := filepath.Join(dir, "b2")
	mustRun(t, "unpack", img+":v1", b2)
	if got, _ := os.ReadFile(filepath.Join(b2, "rootfs", "hello")); string(got) != "hi\n" {
		t.Errorf("repacked content %q", got)
	}
	cfg, _ := os.ReadFile(filepath.Join(b2, "config.json"))
	for _, want := range []string{`"/bin/sh"`, `"echo hi"`, `"A=1"`, `"/srv"`, `"8080/tcp"`, `"/data"`, `"SIGINT"`, `"k": "v"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("config.json lacks %s", want)
		}
	}
}

func TestLayerCmdUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unpack bad uid map", []string{"unpack", "--uid-map", "0:1000", "oci:" + dir + ":x", filepath.Join(dir, "b")}, 2, "CONTAINER:HOST:SIZE"},
		{"unpack missing layout", []string{"unpack", "oci:" + filepath.Join(dir, "nope") + ":x", filepath.Join(dir, "b")}, 3, "not found"},
		{"repack bad compression", []string{"repack", "--compress", "lz4", dir, "oci:" + dir + ":x"}, 2, "--compress"},
		{"repack not a bundle", []string{"repack", dir, "oci:" + dir + ":x"}, 3, "not found"},
		{"config bad env", []string{"config", "oci:" + dir + ":x", "--env", "NOEQUALS"}, 2, "KEY=VALUE"},
		{"config relative volume", []string{"config", "oci:" + dir + ":x", "--volume", "data"}, 2, "absolute"},
		{"config label without =", []string{"config", "oci:" + dir + ":x", "--label", "k"}, 2, "KEY=VALUE"},
		// Refused before the image is opened (it does not exist): usage errors, exit 2.
		{"run workdir at a descriptor", []string{"run", "-w", "/proc/self/fd/5", "oci:" + dir + ":x", "true"}, 2, `--workdir "/proc/self/fd/5"`},
		{"run volume in proc", []string{"run", "-v", "/tmp:/proc/x", "oci:" + dir + ":x", "true"}, 2, `--volume "/proc/x"`},
		{"run volume in sys", []string{"run", "-v", "/tmp:/sys/kernel/x", "oci:" + dir + ":x", "true"}, 2, "CVE-2024-21626"},
		{"run relative workdir", []string{"run", "-w", "tmp", "oci:" + dir + ":x", "true"}, 2, "absolute"},
		{"run workdir climbing", []string{"run", "-w", "/x/../proc", "oci:" + dir + ":x", "true"}, 2, `".."`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := wharfRun(t, tc.args...)
			assertOneLineError(t, code, stderr, tc.code, tc.want)
		})
	}
}
