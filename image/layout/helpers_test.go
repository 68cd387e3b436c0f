package layout

import (
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/content"
)

var specsV2 = specs.Versioned{SchemaVersion: 2}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mkfifo(p string) error { return unix.Mkfifo(p, 0o644) }

func readAllVerified(r io.Reader, d ocispec.Descriptor) ([]byte, error) {
	return io.ReadAll(content.NewVerifyReader(r, d))
}

// panicTB is a testing.TB for helpers run outside a test (in a helper process).
type panicTB struct{ testing.TB }

func (panicTB) Helper()           {}
func (panicTB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
