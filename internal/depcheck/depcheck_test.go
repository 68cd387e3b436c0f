package depcheck

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/wharfoci/wharf"

// rules: a package under the key (a path relative to the module, matched as a prefix on
// whole path elements) may not import anything under the listed prefixes.
var rules = map[string][]string{
	"errdef":              {"content", "image", "distribution", "runtime", "run", "cmd", "internal"},
	"content":             {"image", "distribution", "runtime", "run", "cmd"},
	"image":               {"distribution", "runtime", "run", "cmd"},
	"distribution":        {"runtime", "run", "cmd"},
	"distribution/client": {"distribution/server"},
	"distribution/server": {"distribution/client"},
	"runtime":             {"content", "image", "distribution", "run", "cmd"},
	"run":                 {"cmd"},
	"internal":            {"cmd"},
}

// forbidden modules: the peers wharf is measured against are run as peers, never linked.
var forbidden = []string{
	"github.com/opencontainers/runc",
	"github.com/google/go-containerregistry",
	"github.com/containers/image",
	"github.com/containers/storage",
	"github.com/containerd/containerd",
	"github.com/distribution/distribution",
	"github.com/docker/distribution",
	"github.com/docker/docker",
	"oras.land/oras-go",
	"github.com/opencontainers/umoci",
	"github.com/regclient/regclient",
	"zotregistry.dev",
	"zotregistry.io",
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

func TestDependencyArrows(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	checked := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module+"/")
		checked++
		for _, imp := range f[1:] {
			for _, bad := range forbidden {
				if under(imp, bad) {
					t.Errorf("%s imports %s: peers are run in tests, never imported", pkg, imp)
				}
			}
			if !under(imp, module) {
				continue
			}
			rel := strings.TrimPrefix(imp, module+"/")
			for from, nots := range rules {
				if !under(pkg, from) {
					continue
				}
				for _, not := range nots {
					// internal/depcheck itself and test helpers named *test are allowed
					// everywhere they are needed only by being under their owner.
					if under(rel, not) && !under(pkg, not) {
						t.Errorf("%s imports %s: %s may not import %s (docs/ARCHITECTURE.md)", pkg, rel, from, not)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list returned no packages")
	}
}
