package cgroups

import (
	"errors"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

func TestFreezer(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		files                map[string]string
		paths                func(root string) Paths
		file, frozen, thawed string
	}{
		{"v1 freezer", map[string]string{"freezer/c1/freezer.state": "THAWED\n"}, hybridPaths, "freezer/c1/freezer.state", "FROZEN", "THAWED"},
		{"cgroup2", map[string]string{"c1/cgroup.freeze": "0\n"}, v2Paths, "c1/cgroup.freeze", "1", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, tc.files)
			p := tc.paths(root)
			if p.Frozen() {
				t.Fatal("frozen before")
			}
			if err := p.SetFrozen(true); err != nil {
				t.Fatal(err)
			}
			if got := read(t, root, tc.file); got != tc.frozen || !p.Frozen() {
				t.Fatalf("after SetFrozen(true): %s = %q, Frozen %v", tc.file, got, p.Frozen())
			}
			if err := p.SetFrozen(false); err != nil {
				t.Fatal(err)
			}
			if got := read(t, root, tc.file); got != tc.thawed || p.Frozen() {
				t.Fatalf("after SetFrozen(false): %s = %q, Frozen %v", tc.file, got, p.Frozen())
			}
		})
	}
	t.Run("freezing counts as frozen", func(t *testing.T) {
		root := tree(t, map[string]string{"freezer/c1/freezer.state": "FREEZING\n"})
		if !hybridPaths(root).Frozen() {
			t.Fatal("FREEZING is not frozen")
		}
	})
	t.Run("a hybrid host uses the v1 freezer, never cgroup.freeze", func(t *testing.T) {
		root := tree(t, map[string]string{"unified/c1/cgroup.freeze": "1\n"})
		p := Paths{Unified: root + "/unified/c1", "memory": root + "/memory/c1"}
		if p.Frozen() {
			t.Fatal("frozen through cgroup.freeze on a hybrid host")
		}
		if err := p.SetFrozen(true); !errors.Is(err, errdef.ErrUnsupported) {
			t.Fatalf("SetFrozen without a freezer: %v, want ErrUnsupported", err)
		}
	})
	t.Run("a missing freezer file", func(t *testing.T) {
		if err := hybridPaths(t.TempDir()).SetFrozen(true); err == nil || errors.Is(err, errdef.ErrUnsupported) {
			t.Fatalf("SetFrozen: %v, want the write's error", err)
		}
	})
}
