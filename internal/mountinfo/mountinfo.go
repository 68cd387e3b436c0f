// Package mountinfo reads /proc/PID/mountinfo (proc(5)): the one parser of the cgroup code and
// the runtime's mount checks.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// An Entry is one mountinfo line: "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - FSTYPE SOURCE
// SUPEROPTS", with ROOT, POINT and SOURCE unescaped.
type Entry struct {
	ID, Parent   int
	Root         string // the mount's root inside its file system
	Point        string // the mount point
	Options      string // per-mount options
	FSType       string
	Source       string
	SuperOptions string // per-superblock options
}

// ParseLine reads one line; ok is false for a line that is not one.
func ParseLine(line string) (e Entry, ok bool) {
	f := strings.Fields(line)
	sep := -1
	for i, x := range f {
		if x == "-" {
			sep = i
			break
		}
	}
	if sep < 6 || len(f) < sep+4 {
		return Entry{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return Entry{}, false
	}
	return Entry{ID: id, Parent: parent, Root: Unescape(f[3]), Point: Unescape(f[4]), Options: f[5],
		FSType: f[sep+1], Source: Unescape(f[sep+2]), SuperOptions: f[sep+3]}, true
}

// Parse reads every line of r, in mount order; lines that are not entries are skipped.
func Parse(r io.Reader) ([]Entry, error) {
	var es []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if e, ok := ParseLine(sc.Text()); ok {
			es = append(es, e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return es, nil
}

// Self lists the mounts of the caller's mount namespace (/proc/self/mountinfo).
func Self() ([]Entry, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Unescape undoes mountinfo's octal escapes (\040 for a space, \012 for a newline…).
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
