package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultAllowedDevices are always allowed, after linux.resources.devices, as runc does: mknod
// of any node, the standard character devices, ptys and tun.
var defaultAllowedDevices = []specs.LinuxDeviceCgroup{
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

// applyDevices programs the v1 devices controller from linux.resources.devices, then the
// default allowed devices and the nodes of linux.devices. Without a rule list the cgroup keeps
// its parent's whitelist. (A v2-only host needs an eBPF program: the next issue.)
func applyDevices(paths map[string]string, s *specs.Spec) error {
	dir, ok := paths["devices"]
	if !ok || s.Linux == nil || s.Linux.Resources == nil || len(s.Linux.Resources.Devices) == 0 {
		return nil
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), s.Linux.Resources.Devices...)
	rules = append(rules, defaultAllowedDevices...)
	for _, d := range s.Linux.Devices {
		maj, min := d.Major, d.Minor
		t := d.Type
		if t == "u" {
			t = "c"
		}
		if t == "p" {
			continue
		}
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: &maj, Minor: &min, Access: "rwm"})
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		line := deviceRule(r)
		if err := os.WriteFile(filepath.Join(dir, file), []byte(line), 0); err != nil {
			return fmt.Errorf("write %q to %s/%s: %w", line, dir, file, err)
		}
	}
	return nil
}

// deviceRule is the v1 text of a rule: "a" for everything, else "TYPE MAJOR:MINOR ACCESS".
func deviceRule(r specs.LinuxDeviceCgroup) string {
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
