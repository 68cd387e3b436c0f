//go:build integration

package layer

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func peers() bool { return os.Getenv("WHARF_PEERS") == "1" }

func skipOrFail(t *testing.T, format string, a ...any) {
	t.Helper()
	if peers() {
		t.Fatalf(format, a...)
	}
	t.Skipf(format, a...)
}

func wharfBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WHARF_BIN")
	if dir == "" {
		dir = "../../bin"
	}
	bin, err := filepath.Abs(filepath.Join(dir, "wharf"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "wharf binary: %v (run make build)", err)
	}
	return bin
}

func sharedDir(t *testing.T) string {
	d := os.Getenv("WHARF_SHARED")
	if d == "" {
		d = "../../../shared"
	}
	d, _ = filepath.Abs(d)
	if _, err := os.Stat(filepath.Join(d, "peers", "images")); err != nil {
		skipOrFail(t, "peer scripts: %v", err)
	}
	return d
}

func need(t *testing.T, bins ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			skipOrFail(t, "peer %s: %v", b, err)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

var imageMu sync.Mutex

// testImage builds (once, cached under $WHARF_TEST_IMAGES or /tmp/wharf-test-images) the
// layout made by ../shared/peers/images/make-NAME.sh and returns its path.
func testImage(t *testing.T, name string) string {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	base := os.Getenv("WHARF_TEST_IMAGES")
	if base == "" {
		base = filepath.Join(os.TempDir(), "wharf-test-images")
	}
	dir := filepath.Join(base, name)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return dir
	}
	os.MkdirAll(base, 0755)
	tmp := dir + ".building"
	os.RemoveAll(tmp)
	run(t, filepath.Join(sharedDir(t), "peers", "images", "make-"+name+".sh"), tmp)
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// describe lists a tree: for every path its type, mode, owner, size, content digest or link
// target (what umoci and wharf must agree on).
func describe(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("type=%o mode=%o owner=%d:%d", st.Mode&unix.S_IFMT, st.Mode&07777, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			io.Copy(h, f)
			f.Close()
			s += fmt.Sprintf(" size=%d sha256=%x", st.Size, h.Sum(nil))
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			s += " link=" + l
		case unix.S_IFCHR, unix.S_IFBLK:
			s += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		m[rel] = s
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return m
}

// compareTrees reports every path whose description differs.
func compareTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("missing %s (%s)", p, w))
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("differs %s: %s, want %s", p, g, w))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("extra %s (%s)", p, g))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("… and %d more", len(diffs)-30))
		}
		t.Errorf("%s: %d paths differ:\n%s", what, len(diffs), strings.Join(diffs, "\n"))
	} else {
		t.Logf("%s: %d paths identical", what, len(want))
	}
}
