package depcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/wharfoci/wharf"

// A rule: no package under From (a path relative to the module, matched as a prefix on whole
// path elements) may depend on a package under any of Not, directly or through any chain of
// imports, tests and integration-tagged files included. Why is what docs/ARCHITECTURE.md says.
type rule struct {
	From string
	Not  []string
	Why  string
}

// The floors, bottom up. A row for a package that does not exist yet (build, engine, their
// store and snapshotter) applies as soon as it does.
var leafInternal = []string{"internal/rootfs", "internal/specdefault", "internal/durable", "internal/cgroups", "internal/seccomp", "internal/ctrpath", "internal/mountinfo"}

var upper = []string{"imageref", "run", "build", "engine", "cmd", "bench"}

var rules = []rule{
	{"errdef", []string{""}, "every package uses it: it imports nothing of wharf"},
	{"internal/rootfs", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: path resolution"},
	{"internal/specdefault", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: runc's default config"},
	{"internal/durable", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: the durable write"},
	{"internal/cgroups", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: the runtime's cgroup code"},
	{"internal/seccomp", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: the runtime's seccomp compiler"},
	{"internal/ctrpath", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: the container-path check of run, bundle and build"},
	{"internal/mountinfo", append([]string{"content", "image", "distribution", "runtime", "internal/testutil"}, upper...), "a leaf: the mountinfo parser of the cgroup code and the runtime"},
	{"content", append([]string{"image", "distribution", "runtime"}, upper...), "the store knows bytes and digests, not what they mean"},
	{"image", append([]string{"distribution", "runtime"}, upper...), "an image is the same whether it came from a layout or a registry"},
	{"distribution", append([]string{"runtime"}, upper...), "a registry stores images; it never runs them"},
	{"distribution/client", []string{"distribution/server"}, "client and server meet only at the wire"},
	{"distribution/server", []string{"distribution/client"}, "client and server meet only at the wire"},
	{"runtime", append([]string{"content", "image", "distribution"}, upper...), "a bundle on disk is the runtime's whole contract (runtime-spec)"},
	{"imageref", []string{"runtime", "run", "build", "engine", "cmd", "bench"}, "names of images: layouts, archives, registries; nothing that runs them"},
	{"run", []string{"runtime", "build", "engine", "cmd", "bench"}, "run drives a runtime binary, as containerd and podman do, never the runtime package"},
	{"snapshot", []string{"runtime", "run", "build", "engine", "cmd", "bench", "distribution"}, "snapshots are file trees: build and the engine share them"},
	{"store", []string{"runtime", "run", "build", "engine", "cmd", "bench"}, "the image store serves build and the engine alike"},
	{"build", []string{"runtime", "engine", "cmd", "bench"}, "build runs RUN steps through a runtime binary, and is not the engine"},
	{"engine", []string{"runtime", "build", "cmd", "bench"}, "the engine drives a runtime binary, and is not the builder"},
	{"cmd/wharf", []string{"runtime", "cmd/wharf-runtime"}, "wharf runs wharf-runtime as a binary"},
	{"cmd/wharf-runtime", []string{"content", "image", "distribution", "imageref", "run", "build", "engine", "cmd/wharf"}, "the runtime binary knows only runtime-spec"},
}

// forbidden modules: the peers wharf is measured against are run as peers, never linked.
var forbidden = []string{
	"github.com/opencontainers/runc",
	"github.com/google/go-containerregistry",
	"github.com/containers/image",
	"github.com/containers/storage",
	"github.com/containers/buildah",
	"github.com/containers/podman",
	"github.com/containerd/containerd",
	"github.com/distribution/distribution",
	"github.com/docker/distribution",
	"github.com/docker/docker",
	"github.com/moby/moby",
	"oras.land/oras-go",
	"github.com/opencontainers/umoci",
	"github.com/regclient/regclient",
	"github.com/GoogleContainerTools/kaniko",
	"zotregistry.dev",
	"zotregistry.io",
}

func under(pkg, prefix string) bool {
	return prefix == "" || pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// pkgInfo is what `go list -json` says of one package (or a test variant of one).
type pkgInfo struct {
	ImportPath string
	ForTest    string
	Deps       []string
}

// listDeps returns, for every wharf package, the transitive dependencies of the package and of
// its tests, with the integration-tagged files read too.
func listDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-test", "-tags", "integration", "-json=ImportPath,ForTest,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	deps := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		owner := p.ImportPath
		if i := strings.Index(owner, " ["); i >= 0 {
			owner = owner[:i]
		}
		if p.ForTest != "" {
			owner = p.ForTest
		}
		if strings.HasSuffix(owner, ".test") || !under(owner, module) {
			continue // the generated test mains
		}
		deps[owner] = append(deps[owner], p.Deps...)
	}
	return deps
}

// violations lists every dependency in deps (owner → transitive deps, import paths) that
// crosses a rule or links a peer.
func violations(deps map[string][]string) []string {
	var owners []string
	for o := range deps {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	var bad []string
	for _, owner := range owners {
		pkg := strings.TrimPrefix(owner, module+"/")
		seen := map[string]bool{}
		for _, d := range deps[owner] {
			if seen[d] {
				continue
			}
			seen[d] = true
			for _, peer := range forbidden {
				if under(d, peer) {
					bad = append(bad, pkg+" depends on "+d+": peers are run in tests, never linked")
				}
			}
			if !under(d, module) {
				continue
			}
			rel := strings.TrimPrefix(d, module+"/")
			for _, r := range rules {
				if !under(pkg, r.From) {
					continue
				}
				for _, not := range r.Not {
					if under(rel, not) && !under(rel, r.From) {
						bad = append(bad, pkg+" depends on "+rel+": "+r.From+" may not depend on "+not+": "+r.Why)
					}
				}
			}
		}
	}
	return bad
}

// TestDependencyArrows: the arrows of docs/ARCHITECTURE.md hold for every package, its tests
// and its integration tests, through every chain of imports.
func TestDependencyArrows(t *testing.T) {
	deps := listDeps(t)
	if len(deps) < 20 {
		t.Fatalf("go list found %d packages", len(deps))
	}
	for _, v := range violations(deps) {
		t.Error(v + " (docs/ARCHITECTURE.md)")
	}
	t.Logf("%d packages checked against %d rules", len(deps), len(rules))
}

// TestViolations: the check sees what a direct-imports check would miss.
func TestViolations(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	for _, tc := range []struct {
		name string
		deps map[string][]string
		want int
	}{
		{"runtime through imageref to distribution", map[string][]string{m("runtime"): {m("imageref"), m("distribution/client")}}, 2},
		{"run to runtime", map[string][]string{m("run"): {m("runtime")}}, 1},
		{"a leaf to image", map[string][]string{m("internal/durable"): {m("image")}}, 1},
		{"a peer, deep down", map[string][]string{m("image/copy"): {"github.com/containerd/containerd/v2/core/content"}}, 1},
		{"client to server", map[string][]string{m("distribution/client"): {m("distribution/server/servertest"), m("distribution/server")}}, 2},
		{"allowed", map[string][]string{m("cmd/wharf"): {m("run"), m("imageref"), m("image/copy")}, m("run"): {m("image/bundle")}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := violations(tc.deps); len(got) != tc.want {
				t.Fatalf("violations = %q, want %d", got, tc.want)
			}
		})
	}
	for _, p := range leafInternal {
		found := false
		for _, r := range rules {
			found = found || r.From == p
		}
		if !found {
			t.Errorf("no rule for %s", p)
		}
	}
}
