package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

// mktree makes files below dir: "f": "content", "d/": dir, "l": "->target" (symlink).
func mktree(t testing.TB, dir string, spec map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(spec))
	for k := range spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := spec[k]
		p := filepath.Join(dir, k)
		if err := os.MkdirAll(filepath.Dir(p), 0755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(k, "/"):
			err = os.MkdirAll(p, 0755)
		case strings.HasPrefix(v, "->"):
			err = os.Symlink(v[2:], p)
		default:
			err = os.WriteFile(p, []byte(v), 0644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listing summarises a resolved set: item match → its entries' Rel (dirs with a /).
func listing(s *SourceSet) []string {
	var out []string
	for _, it := range s.Items() {
		if !it.Dir {
			out = append(out, it.Match)
			continue
		}
		for _, e := range it.Entries {
			r := it.Match + ":" + e.Rel
			if e.IsDir() {
				r += "/"
			}
			out = append(out, r)
		}
	}
	return out
}

func TestFindIgnoreFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		explicit string
		want     string
	}{
		{name: "none", want: ""},
		{name: ".dockerignore", files: []string{"ctx/.dockerignore"}, want: "ctx/.dockerignore"},
		{name: ".containerignore beats .dockerignore", files: []string{"ctx/.dockerignore", "ctx/.containerignore"}, want: "ctx/.containerignore"},
		{name: "FILE.containerignore beside the Containerfile beats the context's", files: []string{"ctx/.containerignore", "files/Build.containerignore"}, want: "files/Build.containerignore"},
		{name: "FILE.dockerignore beats FILE.containerignore (buildah 1.28)", files: []string{"files/Build.containerignore", "files/Build.dockerignore"}, want: "files/Build.dockerignore"},
		{name: "--ignorefile beats all", files: []string{"files/Build.dockerignore", "other"}, explicit: "other", want: "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "ctx"), 0755)
			os.MkdirAll(filepath.Join(dir, "files"), 0755)
			for _, f := range tc.files {
				os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0644)
			}
			explicit := ""
			if tc.explicit != "" {
				explicit = filepath.Join(dir, tc.explicit)
			}
			got, err := FindIgnoreFile(filepath.Join(dir, "ctx"), filepath.Join(dir, "files/Build"), explicit)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" && got != "" || tc.want != "" && got != filepath.Join(dir, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestIgnoreRules: Docker's .dockerignore rules, through moby/patternmatcher.
func TestIgnoreRules(t *testing.T) {
	ig, err := NewIgnore([]string{"*.log", "build", "**/tmp", "docs/*.md", "!docs/README.md", "node_modules", "!node_modules/keep/**"})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"a.log": true, "sub/a.log": false, // patterns are from the context root
		"build": true, "build/x/y": true, // a directory match covers what it holds
		"tmp": true, "a/b/tmp/c": true, // ** matches any depth
		"docs/x.md": true, "docs/README.md": false, // the last match wins
		"node_modules/x": true, "node_modules/keep/a": false,
		"src/main.go": false,
	} {
		if got, err := ig.Excluded(path); err != nil || got != want {
			t.Errorf("Excluded(%s) = %v, %v, want %v", path, got, err, want)
		}
	}
	for dir, want := range map[string]bool{
		"build":          false, // no exception could re-include below: skipped unread
		"node_modules":   true,  // !node_modules/keep/** reaches below
		"docs":           true,
		"other":          false,
		"node_modules/a": false,
	} {
		if got := ig.MayIncludeBelow(dir); got != want {
			t.Errorf("MayIncludeBelow(%s) = %v, want %v", dir, got, want)
		}
	}
	if _, err := NewIgnore([]string{"["}); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Errorf("bad pattern: %v", err)
	}
	if ig, _ := NewIgnore([]string{"!x/**"}); !ig.MayIncludeBelow("anything") == false {
		t.Error("a ** exception could match anywhere")
	}
}

func TestReadIgnore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\n/abs\n  spaced  \n!keep\n\n"), 0644)
	ig, err := ReadIgnore(dir, filepath.Join(dir, "Containerfile"), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"abs", "spaced", "!keep"}; !reflect.DeepEqual(ig.Patterns, want) {
		t.Fatalf("patterns %q, want %q", ig.Patterns, want)
	}
}

// TestResolve: sources against the context, hostile ones included.
func TestResolve(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0600)
	for _, tc := range []struct {
		name     string
		files    map[string]string
		ignore   []string
		srcs     []string
		opts     ResolveOptions
		want     []string
		sentinel error
		msg      string
	}{
		{name: "file", files: map[string]string{"a": "a"}, srcs: []string{"a"}, want: []string{"a"}},
		{name: "absolute path is from the context root", files: map[string]string{"a": "a"}, srcs: []string{"/a"}, want: []string{"a"}},
		{name: "dotdot that stays inside", files: map[string]string{"d/": "", "a": "a"}, srcs: []string{"d/../a"}, want: []string{"a"}},
		{name: "dotdot out of the context", files: map[string]string{"a": "a"}, srcs: []string{"../a"}, sentinel: errdef.ErrUnsafePath, msg: "COPY source outside the build context"},
		{name: "dotdot out through a subdir", files: map[string]string{"d/": ""}, srcs: []string{"d/../../x"}, sentinel: errdef.ErrUnsafePath, msg: "COPY source outside the build context"},
		{name: "absolute symlink out of the context", files: map[string]string{"l": "->" + outside + "/secret"}, srcs: []string{"l"}, sentinel: errdef.ErrUnsafePath, msg: "symlink that leads out"},
		{name: "relative symlink out of the context", files: map[string]string{"d/l": "->../../../../../../" + outside + "/secret"}, srcs: []string{"d/l"}, sentinel: errdef.ErrUnsafePath, msg: "symlink that leads out"},
		{name: "symlinked directory on the way out", files: map[string]string{"o": "->" + outside}, srcs: []string{"o/secret"}, sentinel: errdef.ErrUnsafePath},
		{name: "glob through a symlink out finds nothing", files: map[string]string{"o": "->" + outside}, srcs: []string{"o/*"}, sentinel: errdef.ErrNotFound},
		{name: "symlink inside is followed", files: map[string]string{"t": "t", "l": "->t"}, srcs: []string{"l"}, want: []string{"l"}},
		{name: "directory copies its contents, symlinks as entries", files: map[string]string{"d/a": "a", "d/s/b": "b", "d/l": "->/etc/passwd"}, srcs: []string{"d"}, want: []string{"d:a", "d:l", "d:s/", "d:s/b"}},
		{name: "glob per component", files: map[string]string{"a1.txt": "", "a2.txt": "", "b.txt": "", "d/a3.txt": ""}, srcs: []string{"a*.txt", "*/a?.txt"}, want: []string{"a1.txt", "a2.txt", "d/a3.txt"}},
		{name: "glob matches dotfiles (filepath.Match)", files: map[string]string{".hidden": "", "x": ""}, srcs: []string{"*"}, want: []string{".hidden", "x"}},
		{name: "glob matching nothing is an error (buildah)", files: map[string]string{"a": ""}, srcs: []string{"nomatch*"}, sentinel: errdef.ErrNotFound},
		{name: "missing file", srcs: []string{"nope"}, sentinel: errdef.ErrNotFound},
		{name: "ignored file is not there", files: map[string]string{"secret.key": "k"}, ignore: []string{"*.key"}, srcs: []string{"secret.key"}, sentinel: errdef.ErrNotFound, msg: "excluded by"},
		{name: "glob skips ignored files", files: map[string]string{"a.key": "", "b.txt": ""}, ignore: []string{"*.key"}, srcs: []string{"*"}, want: []string{"b.txt"}},
		{name: "symlink to an ignored file does not bring it in", files: map[string]string{"secret.key": "k", "l": "->secret.key"}, ignore: []string{"*.key"}, srcs: []string{"l"}, sentinel: errdef.ErrNotFound},
		{name: "walk leaves ignored entries out, exceptions back in", files: map[string]string{"a.log": "", "keep.log": "", "src/x.go": "", "nm/p/q": "", "nm/keep/k": ""}, ignore: []string{"*.log", "!keep.log", "nm", "!nm/keep"}, srcs: []string{"."}, want: []string{":keep.log", ":nm/", ":nm/keep/", ":nm/keep/k", ":src/", ":src/x.go"}},
		{name: "--exclude below the copied directory", files: map[string]string{"d/a.txt": "", "d/b.md": "", "d/s/c.txt": ""}, srcs: []string{"d"}, opts: ResolveOptions{Excludes: []string{"*.txt"}}, want: []string{"d:b.md", "d:s/", "d:s/c.txt"}},
		{name: "--exclude of a matched file", files: map[string]string{"hom.txt": "", "home.md": ""}, srcs: []string{"hom*"}, opts: ResolveOptions{Excludes: []string{"*.txt"}}, want: []string{"home.md"}},
		{name: "--parents keeps the path", files: map[string]string{"a/b/c.txt": ""}, srcs: []string{"a/b/c.txt"}, opts: ResolveOptions{Parents: true}, want: []string{"a/b/c.txt"}},
		{name: "URL without a fetcher (COPY)", srcs: []string{"https://example.com/x"}, sentinel: errdef.ErrInvalidArgument, msg: "can't be a URL"},
		{name: "--checksum needs one URL", files: map[string]string{"a": ""}, srcs: []string{"a"}, opts: ResolveOptions{Checksum: "sha256:00"}, sentinel: errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mktree(t, dir, tc.files)
			ig, err := NewIgnore(tc.ignore)
			if err != nil {
				t.Fatal(err)
			}
			ig.File = ".dockerignore"
			tree, err := OpenContext(dir, ig)
			if err != nil {
				t.Fatal(err)
			}
			defer tree.Close()
			set, err := tree.Resolve(context.Background(), tc.srcs, tc.opts)
			if tc.sentinel != nil || tc.msg != "" {
				if err == nil {
					t.Fatalf("no error, got %q", listing(set))
				}
				if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
					t.Fatalf("%v: does not wrap %v", err, tc.sentinel)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("%v: want %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer set.Close()
			if got := listing(set); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolveRootfs(t *testing.T) {
	dir := t.TempDir()
	// in a stage's root an absolute symlink resolves inside the root, as in a container
	mktree(t, dir, map[string]string{"usr/lib/real": "r", "usr/lib/link": "->/usr/lib/real", "up": "->../../../../usr/lib/real"})
	tree, err := OpenRootfs(dir, "stage base")
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	set, err := tree.Resolve(context.Background(), []string{"/usr/lib/link", "up"}, ResolveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range set.Items() {
		if it.Path != "usr/lib/real" {
			t.Errorf("%s resolved to %s", it.Match, it.Path)
		}
	}
	if !set.Owners {
		t.Error("COPY --from keeps owners")
	}
	if _, err := tree.Resolve(context.Background(), []string{"../x"}, ResolveOptions{}); !errors.Is(err, errdef.ErrUnsafePath) {
		t.Errorf("../ in a stage: %v", err)
	}
}

// TestWalkPrunesExcluded: an excluded directory no exception reaches below is not read.
func TestWalkPrunesExcluded(t *testing.T) {
	dir := t.TempDir()
	spec := map[string]string{"Containerfile": "FROM scratch"}
	for i := 0; i < 20; i++ {
		spec[fmt.Sprintf("node_modules/p%d/f", i)] = "x"
	}
	mktree(t, dir, spec)
	for _, tc := range []struct {
		name     string
		patterns []string
		reads    int64
	}{
		{name: "excluded, no exception", patterns: []string{"node_modules"}, reads: 1},
		{name: "exception elsewhere", patterns: []string{"node_modules", "!src"}, reads: 1},
		{name: "exception below", patterns: []string{"node_modules", "!node_modules/p3"}, reads: 3},
		{name: "not excluded", patterns: nil, reads: 2 + 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ig, _ := NewIgnore(tc.patterns)
			tree, _ := OpenContext(dir, ig)
			defer tree.Close()
			before := atomic.LoadInt64(&dirsRead)
			if _, err := tree.Resolve(context.Background(), []string{"."}, ResolveOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := atomic.LoadInt64(&dirsRead) - before; got != tc.reads {
				t.Fatalf("read %d directories, want %d", got, tc.reads)
			}
		})
	}
}

// BenchmarkResolveExcluded: a context whose 100,000 files sit under an excluded directory
// costs about what an empty context does.
func BenchmarkResolveExcluded(b *testing.B) {
	big := b.TempDir()
	if err := os.WriteFile(filepath.Join(big, "Containerfile"), []byte("FROM scratch\n"), 0644); err != nil {
		b.Fatal(err)
	}
	for d := 0; d < 100; d++ {
		p := filepath.Join(big, "node_modules", fmt.Sprintf("pkg%03d", d))
		if err := os.MkdirAll(p, 0755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 1000; f++ {
			if err := os.WriteFile(filepath.Join(p, fmt.Sprintf("f%04d.js", f)), nil, 0644); err != nil {
				b.Fatal(err)
			}
		}
	}
	empty := b.TempDir()
	os.WriteFile(filepath.Join(empty, "Containerfile"), []byte("FROM scratch\n"), 0644)
	for _, c := range []struct {
		name, dir string
		ignore    []string
	}{
		{"empty", empty, []string{"node_modules"}},
		{"100k-excluded", big, []string{"node_modules"}},
		{"100k-excluded-with-exception-elsewhere", big, []string{"node_modules", "!src/keep"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ig, _ := NewIgnore(c.ignore)
			tree, err := OpenContext(c.dir, ig)
			if err != nil {
				b.Fatal(err)
			}
			defer tree.Close()
			for i := 0; i < b.N; i++ {
				set, err := tree.Resolve(context.Background(), []string{"."}, ResolveOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := set.Digest(context.Background(), nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
