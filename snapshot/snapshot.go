package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/durable"
)

// Kind is what a snapshot is.
type Kind string

const (
	KindActive    Kind = "active"
	KindView      Kind = "view"
	KindCommitted Kind = "committed"
)

// Driver is how snapshots are stored.
type Driver string

const (
	// Overlay keeps each snapshot's own changes and stacks parents with overlayfs.
	Overlay Driver = "overlay"
	// Native copies the parent into each new snapshot.
	Native Driver = "native"
)

// Info describes a snapshot.
type Info struct {
	Kind    Kind              `json:"kind"`
	Name    string            `json:"name"`             // its key (active, view) or name (committed)
	Parent  string            `json:"parent,omitempty"` // the committed parent's name
	Labels  map[string]string `json:"labels,omitempty"`
	Created time.Time         `json:"created"`
	Updated time.Time         `json:"updated"`
	ID      string            `json:"id"` // the directory under snapshots/
}

// Opt sets labels of a snapshot at Prepare, View or Commit.
type Opt func(*Info)

// WithLabels sets labels (merged over what is there).
func WithLabels(l map[string]string) Opt {
	return func(i *Info) {
		if len(l) == 0 {
			return
		}
		if i.Labels == nil {
			i.Labels = map[string]string{}
		}
		for k, v := range l {
			i.Labels[k] = v
		}
	}
}

// Snapshotter is a store of snapshots under one root directory.
type Snapshotter struct {
	root   string
	driver Driver
}

// Options of New.
type Options struct {
	// Driver forces a driver for a new store; empty picks overlay when the kernel mounts it on
	// the root's file system, else native. An existing store keeps its own.
	Driver Driver
}

const driverFile = "driver"

// New opens the snapshot store at root, creating it when missing, and removes what an
// interrupted operation left (Cleanup).
func New(ctx context.Context, root string, opts Options) (*Snapshotter, error) {
	for _, d := range []string{root, filepath.Join(root, "snapshots"), filepath.Join(root, "keys"), filepath.Join(root, "trash")} {
		if err := durable.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open snapshots %s: %w", root, err)
		}
	}
	s := &Snapshotter{root: root}
	err := s.locked(true, func() error {
		b, err := os.ReadFile(filepath.Join(root, driverFile))
		switch {
		case err == nil:
			s.driver = Driver(strings.TrimSpace(string(b)))
			if opts.Driver != "" && opts.Driver != s.driver {
				return fmt.Errorf("open snapshots %s: %w: it uses the %s driver, not %s", root, errdef.ErrInvalidArgument, s.driver, opts.Driver)
			}
		case errors.Is(err, fs.ErrNotExist):
			s.driver = opts.Driver
			if s.driver == "" {
				s.driver = Native
				if overlaySupported(root) {
					s.driver = Overlay
				}
			}
			if err := durable.WriteFile(filepath.Join(root, driverFile), []byte(s.driver+"\n"), 0o600); err != nil {
				return err
			}
		default:
			return err
		}
		if s.driver != Overlay && s.driver != Native {
			return fmt.Errorf("open snapshots %s: %w: unknown driver %q", root, errdef.ErrInvalidArgument, s.driver)
		}
		return s.cleanup()
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Driver is the store's driver.
func (s *Snapshotter) Driver() Driver { return s.driver }

// Root is the store's directory.
func (s *Snapshotter) Root() string { return s.root }

func (s *Snapshotter) locked(exclusive bool, fn func() error) error {
	f, err := os.OpenFile(filepath.Join(s.root, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock snapshots %s: %w", s.root, err)
	}
	defer f.Close()
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("lock snapshots %s: %w", s.root, err)
	}
	return fn()
}

func keyFile(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

func (s *Snapshotter) dir(id string) string { return filepath.Join(s.root, "snapshots", id) }

// readIndex returns the id the index names for name.
func (s *Snapshotter) readIndex(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.root, "keys", keyFile(name)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("snapshot %q: %w", name, errdef.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	id, n, ok := strings.Cut(string(b), "\n")
	if !ok || n != name {
		return "", fmt.Errorf("snapshot %q: %w: its index is damaged", name, errdef.ErrInvalidState)
	}
	return id, nil
}

func (s *Snapshotter) writeIndex(name, id string) error {
	return durable.WriteFile(filepath.Join(s.root, "keys", keyFile(name)), []byte(id+"\n"+name), 0o600)
}

func (s *Snapshotter) removeIndex(name string) error {
	p := filepath.Join(s.root, "keys", keyFile(name))
	if err := os.Remove(p); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer d.Close()
	return durable.SyncDir(int(d.Fd()), filepath.Dir(p))
}

func (s *Snapshotter) readInfo(id string) (Info, error) {
	b, err := os.ReadFile(filepath.Join(s.dir(id), "info.json"))
	if err != nil {
		return Info{}, err
	}
	var i Info
	if err := json.Unmarshal(b, &i); err != nil {
		return Info{}, fmt.Errorf("snapshot %s: info.json: %w", id, err)
	}
	i.ID = id
	return i, nil
}

func (s *Snapshotter) writeInfo(i Info) error {
	b, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(s.dir(i.ID), "info.json"), b, 0o600)
}

// lookup returns the record of name, checked against its index.
func (s *Snapshotter) lookup(name string) (Info, error) {
	id, err := s.readIndex(name)
	if err != nil {
		return Info{}, err
	}
	i, err := s.readInfo(id)
	if err != nil {
		return Info{}, fmt.Errorf("snapshot %q: %w", name, err)
	}
	if i.Name != name {
		return Info{}, fmt.Errorf("snapshot %q: %w", name, errdef.ErrNotFound)
	}
	return i, nil
}

// Stat describes the snapshot key (a key or a committed name).
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var i Info
	err := s.locked(false, func() (err error) { i, err = s.lookup(key); return })
	return i, err
}

// Prepare makes an active (writable) snapshot key on top of the committed snapshot parent
// ("" for an empty one) and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error) {
	return s.create(ctx, KindActive, key, parent, opts)
}

// View makes a read-only snapshot key of the committed snapshot parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error) {
	return s.create(ctx, KindView, key, parent, opts)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string, opts []Opt) ([]Mount, error) {
	if key == "" {
		return nil, fmt.Errorf("prepare snapshot: %w: an empty key", errdef.ErrInvalidArgument)
	}
	var mounts []Mount
	err := s.locked(true, func() error {
		if _, err := s.readIndex(key); err == nil {
			return fmt.Errorf("prepare snapshot %q: %w", key, errdef.ErrAlreadyExists)
		}
		var chain []Info
		if parent != "" {
			p, err := s.lookup(parent)
			if err != nil {
				return fmt.Errorf("prepare snapshot %q: parent: %w", key, err)
			}
			if p.Kind != KindCommitted {
				return fmt.Errorf("prepare snapshot %q: parent %q is %s, not committed: %w", key, parent, p.Kind, errdef.ErrInvalidState)
			}
			if chain, err = s.chain(p); err != nil {
				return err
			}
		}
		id, err := s.nextID()
		if err != nil {
			return err
		}
		d := s.dir(id)
		// Half-made until the index names it: a crash before that leaves a directory Cleanup removes.
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("prepare snapshot %q: %w", key, err)
		}
		for _, sub := range []string{"fs", "work"} {
			if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
				return fmt.Errorf("prepare snapshot %q: %w", key, err)
			}
		}
		if s.driver == Native && kind == KindActive && len(chain) > 0 {
			if err := copyTree(s.fsDir(chain[0].ID), filepath.Join(d, "fs")); err != nil {
				return fmt.Errorf("prepare snapshot %q: copy %q: %w", key, parent, err)
			}
		}
		now := time.Now().UTC()
		i := Info{Kind: kind, Name: key, Parent: parent, Created: now, Updated: now, ID: id}
		for _, o := range opts {
			o(&i)
		}
		if err := s.writeInfo(i); err != nil {
			return err
		}
		if err := s.writeIndex(key, id); err != nil {
			return err
		}
		mounts = s.mounts(i, chain)
		return nil
	})
	return mounts, err
}

// nextID is one more than the biggest id in use: short ids keep overlay's options short.
func (s *Snapshotter) nextID() (string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return "", err
	}
	max := 0
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > max {
			max = n
		}
	}
	ents, _ = os.ReadDir(filepath.Join(s.root, "trash"))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n > max {
			max = n
		}
	}
	return strconv.Itoa(max + 1), nil
}

// chain returns the committed snapshot c and its ancestors, c first.
func (s *Snapshotter) chain(c Info) ([]Info, error) {
	out := []Info{c}
	for c.Parent != "" {
		p, err := s.lookup(c.Parent)
		if err != nil {
			return nil, fmt.Errorf("snapshot %q: parent: %w", c.Name, err)
		}
		out = append(out, p)
		c = p
		if len(out) > 4096 {
			return nil, fmt.Errorf("snapshot %q: %w: a parent chain of over 4096", c.Name, errdef.ErrInvalidState)
		}
	}
	return out, nil
}

func (s *Snapshotter) fsDir(id string) string { return filepath.Join(s.dir(id), "fs") }

// mounts of snapshot i whose parents are chain (nearest first).
func (s *Snapshotter) mounts(i Info, chain []Info) []Mount {
	ro := i.Kind != KindActive
	if s.driver == Native || len(chain) == 0 {
		src := s.fsDir(i.ID)
		if s.driver == Native && i.Kind == KindView && len(chain) > 0 {
			src = s.fsDir(chain[0].ID) // a view needs no copy of its own
		}
		opts := []string{"rbind", "rw"}
		if ro {
			opts = []string{"rbind", "ro"}
		}
		return []Mount{{Type: "bind", Source: src, Options: opts}}
	}
	var lowers []string
	for _, c := range chain {
		lowers = append(lowers, s.fsDir(c.ID))
	}
	if ro {
		if len(lowers) == 1 {
			return []Mount{{Type: "bind", Source: lowers[0], Options: []string{"rbind", "ro"}}}
		}
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(lowers, ":")}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "redirect_dir=off", "metacopy=off",
		"workdir=" + filepath.Join(s.dir(i.ID), "work"),
		"upperdir=" + s.fsDir(i.ID),
		"lowerdir=" + strings.Join(lowers, ":"),
	}}}
}

// Mounts returns the mounts of the active or view snapshot key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var mounts []Mount
	err := s.locked(false, func() error {
		i, err := s.lookup(key)
		if err != nil {
			return err
		}
		if i.Kind == KindCommitted {
			return fmt.Errorf("mounts of snapshot %q: %w: it is committed (View it)", key, errdef.ErrInvalidState)
		}
		var chain []Info
		if i.Parent != "" {
			p, err := s.lookup(i.Parent)
			if err != nil {
				return err
			}
			if chain, err = s.chain(p); err != nil {
				return err
			}
		}
		mounts = s.mounts(i, chain)
		return nil
	})
	return mounts, err
}

// Dir returns the directory holding the snapshot's own content: for overlay the changes it
// made (its upper directory: what a layer diff reads), for native its whole tree. Nothing may
// be mounted on it; write only to an active snapshot's.
func (s *Snapshotter) Dir(ctx context.Context, key string) (string, error) {
	var d string
	err := s.locked(false, func() error {
		i, err := s.lookup(key)
		if err != nil {
			return err
		}
		d = s.fsDir(i.ID)
		return nil
	})
	return d, err
}

// Commit turns the active snapshot key into the committed, immutable snapshot name; key is
// gone afterwards. The snapshot's file system is synced first: a committed snapshot is whole.
// Nothing may still be mounted from key.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...Opt) error {
	if name == "" {
		return fmt.Errorf("commit snapshot %q: %w: an empty name", key, errdef.ErrInvalidArgument)
	}
	return s.locked(true, func() error {
		i, err := s.lookup(key)
		if err != nil {
			return fmt.Errorf("commit snapshot %q: %w", key, err)
		}
		if i.Kind != KindActive {
			return fmt.Errorf("commit snapshot %q: %w: it is %s, not active", key, errdef.ErrInvalidState, i.Kind)
		}
		if _, err := s.readIndex(name); err == nil {
			return fmt.Errorf("commit snapshot %q as %q: %w", key, name, errdef.ErrAlreadyExists)
		}
		if err := syncFS(s.fsDir(i.ID)); err != nil {
			return fmt.Errorf("commit snapshot %q: %w", key, err)
		}
		// Index the name, then the record, then drop the key: Cleanup repairs a crash between.
		if err := s.writeIndex(name, i.ID); err != nil {
			return err
		}
		i.Kind, i.Name, i.Updated = KindCommitted, name, time.Now().UTC()
		for _, o := range opts {
			o(&i)
		}
		if err := s.writeInfo(i); err != nil {
			return err
		}
		os.RemoveAll(filepath.Join(s.dir(i.ID), "work"))
		return s.removeIndex(key)
	})
}

// Remove deletes the snapshot key (active, view, or a committed one nothing is prepared on).
// Nothing may still be mounted from it.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var trash string
	err := s.locked(true, func() error {
		i, err := s.lookup(key)
		if err != nil {
			return fmt.Errorf("remove snapshot %q: %w", key, err)
		}
		if i.Kind == KindCommitted {
			infos, err := s.all()
			if err != nil {
				return err
			}
			for _, c := range infos {
				if c.Parent == key {
					return fmt.Errorf("remove snapshot %q: %w: %q is made on it", key, errdef.ErrInvalidState, c.Name)
				}
			}
		}
		if err := s.removeIndex(key); err != nil {
			return fmt.Errorf("remove snapshot %q: %w", key, err)
		}
		trash = filepath.Join(s.root, "trash", i.ID)
		return os.Rename(s.dir(i.ID), trash)
	})
	if err != nil {
		return err
	}
	return removeTree(trash)
}

// all returns every indexed snapshot.
func (s *Snapshotter) all() ([]Info, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "keys"))
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range ents {
		if durable.IsTemp(e.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.root, "keys", e.Name()))
		if err != nil {
			continue
		}
		_, name, ok := strings.Cut(string(b), "\n")
		if !ok {
			continue
		}
		i, err := s.lookup(name)
		if err != nil {
			continue
		}
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

// Walk calls fn for every snapshot, by name.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	if err := s.locked(false, func() (err error) { infos, err = s.all(); return }); err != nil {
		return err
	}
	for _, i := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Usage is what a snapshot's own content takes on disk.
type Usage struct {
	Size   int64 // bytes in blocks
	Inodes int64
}

// Usage measures the snapshot key's own content (for overlay, what it changed).
func (s *Snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	d, err := s.Dir(ctx, key)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	seen := map[uint64]bool{}
	err = filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		u.Inodes++
		u.Size += st.Blocks * 512
		return nil
	})
	return u, err
}

// Cleanup removes what interrupted operations left: directories no index names, indexes
// whose record disagrees, keys left beside a committed name, the trash.
func (s *Snapshotter) Cleanup(ctx context.Context) error {
	return s.locked(true, s.cleanup)
}

func (s *Snapshotter) cleanup() error {
	named := map[string]bool{}
	ents, err := os.ReadDir(filepath.Join(s.root, "keys"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(s.root, "keys", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		id, name, ok := strings.Cut(string(b), "\n")
		i, ierr := s.readInfo(id)
		if durable.IsTemp(e.Name()) || !ok || keyFile(name) != e.Name() || ierr != nil || i.Name != name {
			os.Remove(p) // a temporary file, a damaged index, or a commit that did not finish
			continue
		}
		named[id] = true
	}
	ents, err = os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !named[e.Name()] {
			t := filepath.Join(s.root, "trash", e.Name())
			if err := os.Rename(filepath.Join(s.root, "snapshots", e.Name()), t); err != nil {
				return err
			}
		}
	}
	ents, _ = os.ReadDir(filepath.Join(s.root, "trash"))
	for _, e := range ents {
		if err := removeTree(filepath.Join(s.root, "trash", e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// removeTree removes a snapshot directory, unmounting nothing: a mount under it is an error
// (EBUSY) rather than a walk into what is mounted.
func removeTree(p string) error {
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}

func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// copyTree copies src's tree into the empty directory dst, keeping owners, modes, times,
// extended attributes, hard links, devices and sparse files (cp -a, from coreutils).
func copyTree(src, dst string) error {
	out, err := exec.Command("cp", "-a", "--preserve=all", "--reflink=auto", "--sparse=always", "-T", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
