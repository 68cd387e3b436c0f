package build

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/bundle"
	"github.com/wharfoci/wharf/internal/rootfs"
)

// Owner is a resolved --chown.
type Owner struct {
	UID, GID uint32
}

// ResolveChown resolves a --chown operand as buildah 1.28 does: "UID" is UID:UID, "UID:GID"
// is taken as it is; a name ("user", "user:group", "UID:group", "user:GID") is looked up in
// root's /etc/passwd and /etc/group (read inside root), a user without a group getting its
// primary group. An unknown name wraps errdef.ErrInvalidArgument.
func ResolveChown(root *rootfs.Root, spec string) (Owner, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	if u == "" || hasGroup && g == "" {
		return Owner{}, fmt.Errorf("resolve --chown=%s: %w: empty user or group", spec, errdef.ErrInvalidArgument)
	}
	uid, uok := parseUint32(u)
	gid, gok := parseUint32(g)
	switch {
	case uok && !hasGroup:
		return Owner{UID: uid, GID: uid}, nil
	case uok && gok:
		return Owner{UID: uid, GID: gid}, nil
	}
	res, err := bundle.ResolveUser(root, spec)
	if err != nil {
		return Owner{}, fmt.Errorf("resolve --chown=%s: %w", spec, err)
	}
	return Owner{UID: res.UID, GID: res.GID}, nil
}

func parseUint32(s string) (uint32, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > math.MaxUint32-1 {
		return 0, false
	}
	return uint32(n), true
}

// ParseChmod parses a --chmod operand: an octal mode up to 07777. buildah 1.28 takes only
// octal modes (BuildKit also takes chmod(1)'s symbolic ones, "u+x"); wharf does as the peer
// and refuses them with a message saying so.
func ParseChmod(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 07777 {
		if strings.ContainsAny(s, "ugoa+-=") {
			return 0, fmt.Errorf("parse --chmod=%s: %w: only octal modes (0 to 07777) are supported, as in buildah 1.28", s, errdef.ErrUnsupported)
		}
		return 0, fmt.Errorf("parse --chmod=%s: %w: not an octal mode between 0 and 07777", s, errdef.ErrInvalidArgument)
	}
	return uint32(n), nil
}
