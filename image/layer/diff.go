package layer

import (
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/rootfs"
)

// ChangeKind says how a path differs from a snapshot.
type ChangeKind int

const (
	// Added: the path is new, or lies inside a replaced directory.
	Added ChangeKind = iota
	// Modified: content or attributes changed (the path is written again in full).
	Modified
	// Deleted: the path is gone (a whiteout).
	Deleted
	// Replaced: a directory that was removed and created again (written with an opaque whiteout).
	Replaced
)

func (k ChangeKind) String() string {
	return [...]string{"added", "modified", "deleted", "replaced"}[k]
}

// Change is one path of a changeset.
type Change struct {
	Kind ChangeKind
	// Rec is the path's current state (its state in the snapshot for Deleted).
	Rec Record
}

// Changes compares root with the snapshot before (ReadSnapshot) using only the metadata each
// path has now and had then: size, mtime, ctime, inode, mode and owner. No file is read.
// Deleted paths under a deleted directory, or under a path that is no longer a directory, are
// implied and not listed. The result is in Walk order (parents first), deletions last.
// lowerLinks maps the inodes of unchanged files to one of their paths, for hardlinks from new
// paths to files of lower layers.
func Changes(root *rootfs.Root, before []Record) (changes []Change, lowerLinks map[uint64]string, err error) {
	old := make(map[string]*Record, len(before))
	for i := range before {
		old[before[i].Path] = &before[i]
	}
	seen := make(map[string]bool, len(before))
	cur := make(map[string]bool) // paths that are directories now
	lowerLinks = map[uint64]string{}
	var opaque []string   // replaced directories being walked: everything below is added
	var replaced []string // every replaced directory
	under := func(p, dir string) bool { return dir == "." || strings.HasPrefix(p, dir+"/") }
	err = Walk(root, func(r Record) error {
		seen[r.Path] = true
		if r.IsDir() {
			cur[r.Path] = true
		}
		for len(opaque) > 0 && !under(r.Path, opaque[len(opaque)-1]) {
			opaque = opaque[:len(opaque)-1]
		}
		o, ok := old[r.Path]
		switch {
		case len(opaque) > 0:
			changes = append(changes, Change{Kind: Added, Rec: r})
		case !ok:
			changes = append(changes, Change{Kind: Added, Rec: r})
		case o.same(r):
			if r.Mode&unix.S_IFMT == unix.S_IFREG && r.Nlink > 1 {
				if _, dup := lowerLinks[r.Ino]; !dup {
					lowerLinks[r.Ino] = r.Path
				}
			}
		case o.IsDir() && r.IsDir() && o.Ino != r.Ino && r.Path != ".":
			changes = append(changes, Change{Kind: Replaced, Rec: r})
			opaque = append(opaque, r.Path)
			replaced = append(replaced, r.Path)
		default:
			changes = append(changes, Change{Kind: Modified, Rec: r})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	deleted := map[string]bool{}
	for _, o := range before { // parents before children
		if seen[o.Path] {
			continue
		}
		d, _ := splitPath(o.Path)
		if deleted[d] || d != "." && !cur[d] {
			deleted[o.Path] = true // implied by its parent's deletion or replacement
			continue
		}
		if replacedAbove(d, replaced) {
			deleted[o.Path] = true
			continue
		}
		deleted[o.Path] = true
		changes = append(changes, Change{Kind: Deleted, Rec: o})
	}
	return changes, lowerLinks, nil
}

// replacedAbove reports whether dir or one of its parents is a Replaced directory (whose
// opaque whiteout already hides everything lower layers had below it).
func replacedAbove(dir string, replaced []string) bool {
	for _, r := range replaced {
		if r == dir || strings.HasPrefix(dir, r+"/") {
			return true
		}
	}
	return false
}
