package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes files (path relative to a new temporary directory → content) and returns the
// directory: the files a kernel would show in its cgroup mounts.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// read returns a file of the tree, trimmed.
func read(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// hybridPaths are a container's cgroups on a host laid out as this one: v1 controllers each
// in a hierarchy of its own (cpu and cpuacct apart), name=systemd, and cgroup2 with hugetlb.
func hybridPaths(root string) Paths {
	p := Paths{Unified: root + "/unified/c1", "name=systemd": root + "/systemd/c1"}
	for _, k := range []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb"} {
		p[k] = root + "/" + k + "/c1"
	}
	return p
}

// v1Paths: a v1 host with cpu and cpuacct joined.
func v1Paths(root string) Paths {
	p := Paths{"cpu,cpuacct": root + "/cpu,cpuacct/c1", "name=systemd": root + "/systemd/c1"}
	for _, k := range []string{"cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb"} {
		p[k] = root + "/" + k + "/c1"
	}
	return p
}

// v2Paths: a cgroup2 host.
func v2Paths(root string) Paths { return Paths{Unified: root + "/c1"} }
