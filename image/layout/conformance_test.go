package layout

import (
	"testing"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/contenttest"
)

var (
	_ content.Target         = (*Layout)(nil)
	_ content.Deleter        = (*Layout)(nil)
	_ content.Walker         = (*Layout)(nil)
	_ content.InfoProvider   = (*Layout)(nil)
	_ content.Ingester       = (*Layout)(nil)
	_ content.ReferrerLister = (*Layout)(nil)
	_ content.Target         = (*Archive)(nil)
)

// The layout is a content store: it passes the content conformance suite.
func TestContentConformance(t *testing.T) {
	contenttest.Suite(t, "layout", func(t *testing.T) contenttest.Store { return newLayout(t) })
}
