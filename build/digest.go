package build

import (
	"context"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/durable"
)

// Digest is the cache key of the set's content: a sha256 over, for every source operand and
// every item it matched (in order), every entry that would be copied, in name order, with
// its path, type, permission bits (setuid, setgid and sticky included), owner (only when
// the set keeps owners: COPY --from), size, content digest (regular files), link target
// (symlinks), device number, the entry it is a hardlink of, and the extended attributes the
// copy keeps. Times are not part of it (as in BuildKit): an unchanged context gives the same
// key however it was checked out, and any change to what would be copied gives another.
// cache (optional) remembers file digests between builds.
func (s *SourceSet) Digest(ctx context.Context, cache *HashCache) (digest.Digest, error) {
	h := sha256.New()
	w := func(parts ...string) {
		for _, p := range parts {
			io.WriteString(h, strconv.Itoa(len(p)))
			io.WriteString(h, ":")
			io.WriteString(h, p)
		}
		io.WriteString(h, "\n")
	}
	w("wharf-build-sources-v1", s.Instruction)
	n := 0
	for _, src := range s.Sources {
		w("source", src.Arg, strconv.FormatBool(src.URL))
		for _, it := range src.Items {
			w("item", it.Rel, strconv.FormatBool(it.Dir))
			for _, p := range it.Parents {
				w("parent", p.Rel, strconv.FormatUint(uint64(p.Mode), 8), s.owner(&p))
			}
			entries := make([]*Entry, len(it.Entries))
			for i := range it.Entries {
				entries[i] = &it.Entries[i]
			}
			sort.SliceStable(entries, func(i, j int) bool { return entries[i].Rel < entries[j].Rel })
			links := map[[2]uint64]string{}
			for _, e := range entries {
				if n++; n&1023 == 0 {
					if err := ctx.Err(); err != nil {
						return "", err
					}
				}
				rec := []string{"entry", e.Rel, strconv.FormatUint(uint64(e.Mode), 8), s.owner(e)}
				if !e.IsDir() && e.Nlink > 1 {
					k := [2]uint64{e.Dev, e.Ino}
					if first, ok := links[k]; ok {
						w(append(rec, "hardlink", first)...)
						continue
					}
					links[k] = e.Rel
				}
				switch {
				case e.IsRegular():
					d, err := cache.fileDigest(it, e)
					if err != nil {
						return "", err
					}
					rec = append(rec, strconv.FormatInt(e.Size, 10), d)
				case e.IsSymlink():
					rec = append(rec, e.Link)
				case !e.IsDir():
					rec = append(rec, strconv.FormatUint(e.Rdev, 10))
				}
				if !e.IsSymlink() {
					x, err := entryXattrs(it, e)
					if err != nil {
						return "", err
					}
					rec = append(rec, x...)
				}
				w(rec...)
			}
		}
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

func (s *SourceSet) owner(e *Entry) string {
	if !s.Owners {
		return "-"
	}
	return fmt.Sprintf("%d:%d", e.UID, e.GID)
}

// entryXattrs lists name=value of the extended attributes the copy keeps, sorted.
func entryXattrs(it *Item, e *Entry) ([]string, error) {
	f, err := it.Tree.OpenFile(path.Join(it.Path, e.Rel))
	if err != nil {
		if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EACCES) {
			return nil, nil // a device or fifo we cannot open: its xattrs are not ours to key
		}
		return nil, err
	}
	defer f.Close()
	names, err := listXattrs(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		if !relevantXattr(n) {
			continue
		}
		v, err := getXattr(int(f.Fd()), n)
		if err != nil {
			return nil, err
		}
		out = append(out, "xattr", n, hex.EncodeToString(v))
	}
	return out, nil
}

// HashCache remembers the sha256 of files by (device, inode, size, mtime, ctime, path), so an
// unchanged file is not read again; a file whose content changed has a new ctime. The zero
// of *HashCache (nil) caches nothing. Safe for concurrent use.
type HashCache struct {
	mu      sync.Mutex
	file    string
	entries map[hashKey]string
	used    map[hashKey]bool
	dirty   bool
}

type hashKey struct {
	Path         string
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64
}

// maxHashCacheEntries bounds the persisted cache; the entries used by the last build are kept
// first.
const maxHashCacheEntries = 1 << 20

// OpenHashCache loads the cache kept in dir (created if missing). An unreadable or corrupt
// cache file starts an empty cache.
func OpenHashCache(dir string) (*HashCache, error) {
	if err := os.MkdirAll(dir, 0700); err != nil {
		return nil, fmt.Errorf("open hash cache: %w", err)
	}
	c := &HashCache{file: filepath.Join(dir, "file-digests.gob"), entries: map[hashKey]string{}, used: map[hashKey]bool{}}
	f, err := os.Open(c.file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		return nil, fmt.Errorf("open hash cache: %w", err)
	}
	defer f.Close()
	var m map[hashKey]string
	if gob.NewDecoder(f).Decode(&m) == nil {
		c.entries = m
	}
	return c, nil
}

// Save writes the cache back (durably, atomically) if it changed.
func (c *HashCache) Save() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	out := c.entries
	if len(out) > maxHashCacheEntries {
		out = map[hashKey]string{}
		for k := range c.used {
			out[k] = c.entries[k]
		}
		for k, v := range c.entries {
			if len(out) >= maxHashCacheEntries {
				break
			}
			out[k] = v
		}
	}
	err := durable.WriteFileFunc(c.file, 0600, func(f *os.File) error { return gob.NewEncoder(f).Encode(out) })
	if err != nil {
		return fmt.Errorf("save hash cache: %w", err)
	}
	c.dirty = false
	return nil
}

// fileDigest is the sha256 of the regular file e of item it, from the cache when its key is
// there.
func (c *HashCache) fileDigest(it *Item, e *Entry) (string, error) {
	rel := path.Join(it.Path, e.Rel)
	key := hashKey{Path: path.Join(it.Tree.real, rel), Dev: e.Dev, Ino: e.Ino, Size: e.Size, Mtime: e.Mtime.Nano(), Ctime: e.Ctime.Nano()}
	if c != nil {
		c.mu.Lock()
		d, ok := c.entries[key]
		if ok {
			c.used[key] = true
		}
		c.mu.Unlock()
		if ok {
			return d, nil
		}
	}
	f, err := it.Tree.OpenFile(rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", err
	}
	var hh hash.Hash = sha256.New()
	if _, err := io.Copy(hh, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", rel, err)
	}
	d := hex.EncodeToString(hh.Sum(nil))
	// cache only what the walk saw: a file that changed since is hashed again next time
	if c != nil && st.Ino == e.Ino && st.Size == e.Size && st.Mtim == e.Mtime && st.Ctim == e.Ctime {
		c.mu.Lock()
		c.entries[key] = d
		c.used[key] = true
		c.dirty = true
		c.mu.Unlock()
	}
	return d, nil
}
