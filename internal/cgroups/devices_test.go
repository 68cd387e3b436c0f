package cgroups

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestApplyDevices: the rules in order, then the defaults, then each node of linux.devices
// (fifos need none), one line per write to devices.allow or devices.deny.
func TestApplyDevices(t *testing.T) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(10), Minor: i64(229), Access: "rw"},
		{Allow: false, Type: "b", Major: i64(8), Access: "m"},
	}
	devices := []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
		{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0},
		{Path: "/dev/ttyX", Type: "u", Major: 4, Minor: 64},
		{Path: "/dev/fifo", Type: "p"},
	}
	want := []string{"deny a", "allow c 10:229 rw", "deny b 8:* m",
		"allow c *:* m", "allow b *:* m", "allow c 1:3 rwm", "allow c 1:5 rwm", "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm",
		"allow c 5:0 rwm", "allow c 5:2 rwm", "allow c 136:* rwm", "allow c 10:200 rwm",
		"allow c 10:229 rwm", "allow b 8:0 rwm", "allow c 4:64 rwm"}
	root := tree(t, map[string]string{"devices/c1/devices.allow": "", "devices/c1/devices.deny": ""})
	p := Paths{"devices": root + "/devices/c1", "memory": "/nonexistent"}
	var got []string
	for _, w := range p.deviceWrites(rules, devices) {
		if w.dir != p["devices"] {
			t.Fatalf("a write to %s", w.dir)
		}
		got = append(got, strings.TrimPrefix(w.file, "devices.")+" "+w.val)
	}
	if !slices.Equal(got, want) {
		t.Errorf("writes\n%q\nwant\n%q", got, want)
	}
	// and through the files: each write replaces the last (the kernel takes each as a rule)
	if err := p.ApplyDevices(rules, devices); err != nil {
		t.Fatal(err)
	}
	if a, d := read(t, root, "devices/c1/devices.allow"), read(t, root, "devices/c1/devices.deny"); a != "c 4:64 rwm" || d != "b 8:* m" {
		t.Fatalf("last writes: allow %q, deny %q", a, d)
	}
}

// TestApplyDevicesOrder: the exact sequence of writes across both files.
func TestApplyDevicesOrder(t *testing.T) {
	p := Paths{"devices": "/d"}
	ws := p.deviceWrites([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"}}, nil)
	if len(ws) != 2+len(DefaultAllowedDevices) || ws[0] != (write{"/d", "devices.deny", "a"}) || ws[1] != (write{"/d", "devices.allow", "c 1:3 r"}) {
		t.Fatalf("writes %v", ws[:2])
	}
}

// TestApplyDevicesNothing: without rules, or without a v1 devices hierarchy, nothing is
// written (the tree has no files: any write would fail).
func TestApplyDevicesNothing(t *testing.T) {
	root := t.TempDir()
	rules := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for _, tc := range []struct {
		name  string
		p     Paths
		rules []specs.LinuxDeviceCgroup
	}{
		{"no rules", Paths{"devices": root}, nil},
		{"cgroup2", Paths{Unified: root}, rules},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.p.ApplyDevices(tc.rules, []specs.LinuxDevice{{Path: "/dev/x", Type: "c", Major: 1, Minor: 1}}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if err := (Paths{"devices": root + "/missing"}).ApplyDevices(rules, nil); err == nil {
		t.Fatal("a missing devices.deny: no error")
	}
}

func TestDeviceRule(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    specs.LinuxDeviceCgroup
		want string
	}{
		{"everything", specs.LinuxDeviceCgroup{}, "a"},
		{"all types, all access", specs.LinuxDeviceCgroup{Type: "a", Access: "rwm"}, "a"},
		{"all types, some access", specs.LinuxDeviceCgroup{Type: "a", Access: "r"}, "a *:* r"},
		{"one node", specs.LinuxDeviceCgroup{Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}, "c 1:3 rw"},
		{"a major", specs.LinuxDeviceCgroup{Type: "b", Major: i64(8)}, "b 8:* rwm"},
		{"negative is any", specs.LinuxDeviceCgroup{Type: "c", Major: i64(-1), Minor: i64(-1), Access: "m"}, "c *:* m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DeviceRule(tc.r); got != tc.want {
				t.Fatalf("DeviceRule = %q, want %q", got, tc.want)
			}
		})
	}
}
