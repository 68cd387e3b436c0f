package cgroups

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// writeFile writes val to an existing file of a cgroup: a kernel's cgroup files always exist,
// so a missing one is an error (ENOENT), never a file made here.
func writeFile(dir, file, val string) error {
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readString reads a one-value file, trimmed; missing or unreadable is "".
func readString(dir, file string) string {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// readUint reads a file holding one number; missing, unreadable or "max" is 0.
func readUint(dir, file string) uint64 {
	n, _ := strconv.ParseUint(readString(dir, file), 10, 64)
	return n
}

// readMax reads a cgroup2 limit: "max" is the largest uint64.
func readMax(dir, file string) uint64 {
	if readString(dir, file) == "max" {
		return math.MaxUint64
	}
	return readUint(dir, file)
}

// readKeyValues reads "key value" lines (memory.stat, cpu.stat, memory.events…); missing or
// unreadable is nil, a line whose value is not a number is left out.
func readKeyValues(dir, file string) map[string]uint64 {
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil
	}
	defer f.Close()
	kv := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}
