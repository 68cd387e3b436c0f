package cgroups

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultAllowedDevices are allowed after linux.resources.devices, as runc does: mknod of any
// node, the standard character devices, ptys and tun.
var DefaultAllowedDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},    // null
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},    // zero
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},    // full
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},    // random
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},    // urandom
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},    // tty
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},    // ptmx
	{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},                 // pts/*
	{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"}, // net/tun
}

func i64(n int64) *int64 { return &n }

// ApplyDevices programs the v1 devices controller (config-linux.md "Device allowlist"): the
// rules of linux.resources.devices in order, then DefaultAllowedDevices, then read, write and
// mknod of each node of linux.devices (fifos need no rule), one line per write to
// devices.allow or devices.deny. Without rules, or without a v1 devices hierarchy, nothing
// is written: the cgroup keeps its parent's list (a cgroup2 host needs an eBPF program, which
// is not written yet). It stops at the first write that fails.
func (p Paths) ApplyDevices(rules []specs.LinuxDeviceCgroup, devices []specs.LinuxDevice) error {
	for _, w := range p.deviceWrites(rules, devices) {
		if err := writeFile(w.dir, w.file, w.val); err != nil {
			return fmt.Errorf("write %q to %s/%s: %w", w.val, w.dir, w.file, err)
		}
	}
	return nil
}

// deviceWrites is what ApplyDevices writes, in order.
func (p Paths) deviceWrites(rules []specs.LinuxDeviceCgroup, devices []specs.LinuxDevice) []write {
	dir, ok := p["devices"]
	if !ok || len(rules) == 0 {
		return nil
	}
	all := append([]specs.LinuxDeviceCgroup(nil), rules...)
	all = append(all, DefaultAllowedDevices...)
	for _, d := range devices {
		t := d.Type
		if t == "p" {
			continue
		}
		if t == "u" {
			t = "c"
		}
		maj, min := d.Major, d.Minor
		all = append(all, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: &maj, Minor: &min, Access: "rwm"})
	}
	ws := make([]write, 0, len(all))
	for _, r := range all {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		ws = append(ws, write{dir, file, DeviceRule(r)})
	}
	return ws
}

// DeviceRule is the v1 text of a rule: "a" for every device and access, else
// "TYPE MAJOR:MINOR ACCESS" with "*" for a missing or negative number (type "a" and access
// "rwm" when empty).
func DeviceRule(r specs.LinuxDeviceCgroup) string {
	t := r.Type
	if t == "" {
		t = "a"
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	if t == "a" && r.Major == nil && r.Minor == nil && len(access) == 3 {
		return "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	return t + " " + num(r.Major) + ":" + num(r.Minor) + " " + access
}
