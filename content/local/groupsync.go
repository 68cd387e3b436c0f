package local

import (
	"sync"

	"golang.org/x/sys/unix"
)

// fsyncDir is unix.Fsync (a test counts the calls).
var fsyncDir, defaultFsync = unix.Fsync, unix.Fsync

// groupSync shares directory fsyncs between concurrent installs (group commit): a caller
// needs an fsync that starts after its rename, so it waits for the next one to start and
// finish, and the first caller to find none running runs it for everyone waiting. Sixteen
// clients pushing small blobs then pay a few directory syncs instead of one each.
type groupSync struct {
	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // generations of fsyncs started
	done    uint64 // the last generation finished
	running bool
	err     error // of generation done
}

// sync returns once an fsync of the directory (fd, or another descriptor of the same
// directory passed by a concurrent caller) has started after the call and finished.
func (g *groupSync) sync(fd int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
	want := g.started + 1 // one running now may have started before our rename
	for g.done < want {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		gen := g.started
		g.mu.Unlock()
		err := fsyncDir(fd)
		g.mu.Lock()
		g.running = false
		g.done, g.err = gen, err
		g.cond.Broadcast()
	}
	return g.err
}

// dirSync returns the groupSync of the blob directory of algorithm alg.
func (s *Store) dirSync(alg string) *groupSync {
	g, _ := s.dirSyncs.LoadOrStore(alg, &groupSync{})
	return g.(*groupSync)
}
