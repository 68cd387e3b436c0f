package server

import (
	"container/list"
	"sync"

	"github.com/wharfoci/wharf/content"
)

// maxParked bounds the upload writers kept open between requests.
const maxParked = 64

// checkpointer is what content/local's writers offer: save what Close would save, and stay open.
type checkpointer interface{ Checkpoint() error }

// parkedUploads keeps upload writers open between the requests of a session (POST, PATCH…,
// PUT): reopening an ingest costs a dozen system calls and, below its first checkpoint,
// rehashing what it holds. A writer is parked only after Checkpoint, so a kill -9 loses nothing
// a 202 acknowledged: the ingest on disk is what reopening it would find. A request takes the
// writer out (one request holds it at a time; a second one opening the ingest meanwhile gets
// the ingest's lock conflict, as without parking). The least recently parked are closed when
// more than maxParked wait.
type parkedUploads struct {
	mu  sync.Mutex
	lru list.List // of *parked, most recently parked at the back
	by  map[string]*list.Element
}

// len is how many writers are parked.
func (p *parkedUploads) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len()
}

type parked struct {
	ref string
	w   content.Writer
}

// take removes and returns the writer parked for ref, or nil.
func (p *parkedUploads) take(ref string) content.Writer {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.by[ref]
	if !ok {
		return nil
	}
	delete(p.by, ref)
	return p.lru.Remove(e).(*parked).w
}

// park keeps w for ref's next request, or closes it when it cannot be checkpointed.
func (p *parkedUploads) park(ref string, w content.Writer) error {
	cp, ok := w.(checkpointer)
	if !ok {
		return w.Close()
	}
	if err := cp.Checkpoint(); err != nil {
		w.Close()
		return err
	}
	var evicted []content.Writer
	p.mu.Lock()
	if p.by == nil {
		p.by = map[string]*list.Element{}
	}
	p.by[ref] = p.lru.PushBack(&parked{ref: ref, w: w})
	for p.lru.Len() > maxParked {
		old := p.lru.Remove(p.lru.Front()).(*parked)
		delete(p.by, old.ref)
		evicted = append(evicted, old.w)
	}
	p.mu.Unlock()
	for _, w := range evicted {
		w.Close()
	}
	return nil
}

// closeAll closes every parked writer.
func (p *parkedUploads) closeAll() {
	p.mu.Lock()
	var ws []content.Writer
	for e := p.lru.Front(); e != nil; e = e.Next() {
		ws = append(ws, e.Value.(*parked).w)
	}
	p.lru.Init()
	p.by = nil
	p.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
}
