package build

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: planning any Containerfile returns a plan or an error, never panics, and a
// plan's every step expands (or fails) in a fresh scope.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.Containerfile")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, dt []byte) {
		p, err := Parse("Containerfile", dt, LoadOptions{BuildPlatform: amd64})
		if err != nil {
			return
		}
		for _, s := range p.Stages {
			sc := p.NewScope(s, nil)
			for _, st := range s.Steps {
				sc.Expand(st)
			}
		}
	})
}

// FuzzFilterArchive: the ADD archive filter never panics and never lets a climbing name
// through.
func FuzzFilterArchive(f *testing.F) {
	f.Add(mkTar(&testing.T{}, []tarEntry{{name: "a", body: "x"}, {name: "../b", body: "y"}}))
	f.Fuzz(func(t *testing.T, dt []byte) {
		var out bytes.Buffer
		if filterArchive(bytes.NewReader(dt), &out) != nil {
			return
		}
		tr := newTarReader(&out)
		for {
			name, err := tr()
			if err == io.EOF || err != nil {
				return
			}
			if escapes(name) {
				t.Fatalf("%q passed the filter", name)
			}
		}
	})
}

func newTarReader(r io.Reader) func() (string, error) {
	tr := tar.NewReader(r)
	return func() (string, error) {
		h, err := tr.Next()
		if err != nil {
			return "", err
		}
		return h.Name, nil
	}
}
