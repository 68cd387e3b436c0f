package copy_test

import (
	"bytes"
	"github.com/wharfoci/wharf/content"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

type copyTarget = content.Target
