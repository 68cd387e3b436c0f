//go:build integration

package layer

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/testutil"
)

// The peers, binaries and test images come through internal/testutil.
var (
	need      = testutil.Need
	run       = testutil.Run
	testImage = testutil.Image
)

func wharfBin(t *testing.T) string { return testutil.Bin(t, "wharf") }

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
	}
	testutil.Report(t, "%s: %d paths compared, %d differ", what, len(want), len(diffs))
}
