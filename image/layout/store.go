package layout

import "github.com/wharfoci/wharf/content/local"

func newStore(root string) (*local.Store, error) { return local.New(root) }

// Close releases the layout's descriptors. Readers already returned stay valid.
func (l *Layout) Close() error { return l.store.Close() }
