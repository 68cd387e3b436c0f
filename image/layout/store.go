package layout

import "github.com/wharfoci/wharf/content/local"

func newStore(root string) (*local.Store, error) { return local.New(root) }

// Close releases the layout's descriptors (and its hold on writersFile). Readers already
// returned stay valid.
func (l *Layout) Close() error {
	l.writersMu.Lock()
	if l.writers != nil {
		l.writers.Close()
		l.writers = nil
	}
	l.writersMu.Unlock()
	return l.store.Close()
}
