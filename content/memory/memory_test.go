package memory_test

import (
	"testing"

	"github.com/wharfoci/wharf/content/contenttest"
	"github.com/wharfoci/wharf/content/memory"
)

func TestConformance(t *testing.T) {
	contenttest.Suite(t, "memory", func(t *testing.T) contenttest.Store { return memory.New() })
}
