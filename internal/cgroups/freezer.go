package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfoci/wharf/errdef"
)

// freezer is the file that freezes the container and its two values: the v1 freezer's
// freezer.state, or cgroup.freeze on a v2 host; file is "" when there is neither.
func (p Paths) freezer() (dir, file, frozen, thawed string) {
	if dir, ok := p["freezer"]; ok {
		return dir, "freezer.state", "FROZEN", "THAWED"
	}
	if dir, ok := p.UnifiedOnly(); ok {
		return dir, "cgroup.freeze", "1", "0"
	}
	return "", "", "", ""
}

// Frozen reports whether the container's processes are frozen or being frozen (v1 FREEZING);
// false without a freezer.
func (p Paths) Frozen() bool {
	dir, file, frozen, _ := p.freezer()
	if file == "" {
		return false
	}
	s := readString(dir, file)
	return s == frozen || s == "FREEZING"
}

// SetFrozen freezes (or thaws) the container's processes and returns once the freezer says
// so, for at most about a second. Without a freezer it is ErrUnsupported.
func (p Paths) SetFrozen(freeze bool) error {
	dir, file, frozen, thawed := p.freezer()
	if file == "" {
		return fmt.Errorf("no freezer cgroup: %w", errdef.ErrUnsupported)
	}
	want := thawed
	if freeze {
		want = frozen
	}
	f := filepath.Join(dir, file)
	for i := 0; i < 1000; i++ {
		if err := writeFile(dir, file, want); err != nil {
			return fmt.Errorf("write %s: %w", f, err)
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("the freezer %s did not reach %s", f, want)
}
