package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// maxDBSize caps /etc/passwd and /etc/group read from an image.
const maxDBSize = 4 << 20

// User is a resolved Config.User.
type User struct {
	UID, GID       uint32
	AdditionalGids []uint32
}

func parseID(s, what string) (uint32, bool, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxInt32 {
		return 0, true, fmt.Errorf("resolve user: %w: %s %s is out of range (0..%d)", errdef.ErrInvalidArgument, what, s, math.MaxInt32)
	}
	return uint32(n), true, nil
}

type dbEntry struct {
	name    string
	id      uint32
	gid     uint32 // passwd only
	members []string
}

// readDB parses /etc/passwd or /etc/group inside root (symlinks resolved inside the root). A
// missing file gives no entries.
func readDB(root *rootfs.Root, name string, passwd bool) ([]dbEntry, error) {
	b, err := root.ReadFile(name, maxDBSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var out []dbEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxDBSize)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if passwd && len(f) < 4 || !passwd && len(f) < 3 {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil || id > math.MaxInt32 {
			continue
		}
		e := dbEntry{name: f[0], id: uint32(id)}
		if passwd {
			g, err := strconv.ParseUint(f[3], 10, 32)
			if err != nil || g > math.MaxInt32 {
				continue
			}
			e.gid = uint32(g)
		} else if len(f) >= 4 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	}
	return out, nil
}

// ResolveUser resolves an image Config.User ("user", "uid", "user:group", "uid:gid", …) through
// the root's /etc/passwd and /etc/group, read inside the root. Numeric values are taken as
// they are (beyond int32 is an error); a name not found is an error. Supplementary groups are
// looked up only for a user given by name without a group (conversion.md).
func ResolveUser(root *rootfs.Root, spec string) (User, error) {
	var u User
	if spec == "" {
		return u, nil
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" || hasGroup && groupPart == "" {
		return u, fmt.Errorf("resolve user %q: %w: empty user or group", spec, errdef.ErrInvalidArgument)
	}
	passwd, err := readDB(root, "/etc/passwd", true)
	if err != nil {
		return u, err
	}
	uid, numeric, err := parseID(userPart, "uid")
	if err != nil {
		return u, err
	}
	var pw *dbEntry
	for i := range passwd {
		if numeric && passwd[i].id == uid || !numeric && passwd[i].name == userPart {
			pw = &passwd[i]
			break
		}
	}
	switch {
	case numeric:
		u.UID = uid
		if pw != nil {
			u.GID = pw.gid
		}
	case pw == nil:
		return u, fmt.Errorf("resolve user %q: %w: no user %q in the image's /etc/passwd", spec, errdef.ErrInvalidArgument, userPart)
	default:
		u.UID, u.GID = pw.id, pw.gid
	}
	if !hasGroup && numeric {
		return u, nil
	}
	groups, err := readDB(root, "/etc/group", false)
	if err != nil {
		return u, err
	}
	if hasGroup {
		gid, gnum, err := parseID(groupPart, "gid")
		if err != nil {
			return u, err
		}
		if gnum {
			u.GID = gid
			return u, nil
		}
		for _, g := range groups {
			if g.name == groupPart {
				u.GID = g.id
				return u, nil
			}
		}
		return u, fmt.Errorf("resolve user %q: %w: no group %q in the image's /etc/group", spec, errdef.ErrInvalidArgument, groupPart)
	}
	seen := map[uint32]bool{}
	for _, g := range groups {
		for _, m := range g.members {
			if m == userPart && g.id != u.GID && !seen[g.id] {
				seen[g.id] = true
				u.AdditionalGids = append(u.AdditionalGids, g.id)
			}
		}
	}
	return u, nil
}
