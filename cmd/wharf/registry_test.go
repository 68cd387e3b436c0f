package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wharfoci/wharf/distribution/server"
	"github.com/wharfoci/wharf/distribution/server/servertest"
)

// isolateCredentials points every credentials file at an empty temporary home.
func isolateCredentials(t *testing.T) string {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", home)
	return home
}

func TestRegistryCommands(t *testing.T) {
	isolateCredentials(t)
	f := newFixture(t)
	host := servertest.Start(t)
	remote := "docker://" + host + "/cli/img"
	out := t.TempDir()
	steps := []struct {
		name string
		args []string
		code int
		want string // in stdout, or stderr for errors
	}{
		{"push", []string{"copy", "-q", "oci:" + f.dir + ":latest", remote + ":v1"}, 0, ""},
		{"push index", []string{"copy", "-q", "--all", "oci:" + f.dir + ":multi", remote + ":multi"}, 0, ""},
		{"push converted to docker", []string{"copy", "--format", "v2s2", "oci:" + f.dir + ":latest", remote + ":docker"}, 0, ""},
		{"pull", []string{"copy", "-q", remote + ":v1", "oci:" + out + "/a:v1"}, 0, ""},
		{"pull by digest", []string{"copy", "-q", remote + "@" + f.manifest.Digest.String(), "oci:" + out + "/b:x"}, 0, ""},
		{"registry to registry", []string{"copy", "-q", "--all", remote + ":multi", "docker://" + host + "/cli/other:m"}, 0, ""},
		{"inspect", []string{"inspect", remote + ":v1"}, 0, f.manifest.Digest.String()},
		{"inspect raw", []string{"inspect", "--raw", remote + ":multi"}, 0, "application/vnd.oci.image.index.v1+json"},
		{"inspect docker format", []string{"inspect", "--raw", remote + ":docker"}, 0, "application/vnd.docker.distribution.manifest.v2+json"},
		{"tags", []string{"tags", remote}, 0, "docker\nmulti\nv1\n"},
		{"tags json", []string{"tags", "--json", "--page-size", "1", remote}, 0, `"multi"`},
		{"missing tag", []string{"inspect", remote + ":nope"}, 3, "not found"},
		{"delete", []string{"delete", remote + ":docker"}, 0, ""},
		{"deleted", []string{"inspect", remote + ":docker"}, 3, "not found"},
		{"tags of a layout", []string{"tags", "oci:" + f.dir}, 2, "registry"},
		{"sync a layout to a repository", []string{"sync", "-q", "--all", "oci:" + f.dir, "docker://" + host + "/cli/mirror"}, 0, ""},
		{"synced tags", []string{"tags", "docker://" + host + "/cli/mirror"}, 0, "latest\nmulti\n"},
		{"sync dry run", []string{"sync", "--dry-run", "docker://" + host + "/cli/mirror", "oci:" + out + "/m"}, 0, "would copy docker://" + host + "/cli/mirror:multi to oci:" + out + "/m:multi"},
		{"sync one tag back", []string{"sync", "-q", "docker://" + host + "/cli/mirror:latest", "oci:" + out + "/m"}, 0, ""},
		{"synced layout", []string{"ls", "oci:" + out + "/m"}, 0, f.manifest.Digest.String()},
		{"sync to a tag", []string{"sync", "oci:" + f.dir, "docker://" + host + "/cli/x:v1"}, 2, "DST neither tag"},
		{"sync from a missing tag", []string{"sync", "docker://" + host + "/cli/mirror:nope", "oci:" + out + "/n"}, 3, "not found"},
		{"catalog", []string{"catalog", host}, 0, "cli/img\ncli/mirror\ncli/other\n"},
		{"catalog json, pages of 1", []string{"catalog", "--json", "--page-size", "1", "docker://" + host}, 0, `"cli/other"`},
		{"catalog of a bad host", []string{"catalog", "no such host!"}, 2, "HOST[:PORT]"},
		{"bad name", []string{"copy", "docker://localhost/Busybox", "oci:" + out + "/c"}, 2, "lower case"},
		{"layout-only command", []string{"validate", remote + ":v1"}, 1, "layouts and archives only"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, stdout, stderr := wharfRun(t, s.args...)
			if code != s.code {
				t.Fatalf("wharf %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(s.args, " "), code, s.code, stdout, stderr)
			}
			got := stdout
			if s.code != 0 {
				got = stderr
			}
			if !strings.Contains(got, s.want) {
				t.Fatalf("wharf %s: output %q does not contain %q", strings.Join(s.args, " "), got, s.want)
			}
		})
	}
	var insp struct{ Digest string }
	json.Unmarshal([]byte(mustRun(t, "inspect", "oci:"+out+"/a:v1")), &insp)
	if insp.Digest != f.manifest.Digest.String() {
		t.Fatalf("pulled %s, want %s", insp.Digest, f.manifest.Digest)
	}
}

func TestLoginLogout(t *testing.T) {
	home := isolateCredentials(t)
	host := servertest.Start(t) // anonymous: any credentials pass the ping
	mustRun(t, "login", "-u", "me", "-p", "pw", host)
	b, err := os.ReadFile(filepath.Join(home, ".docker", "config.json"))
	if err != nil || !strings.Contains(string(b), host) {
		t.Fatalf("config.json after login: %s, %v", b, err)
	}
	mustRun(t, "logout", host)
	code, _, stderr := wharfRun(t, "logout", host)
	assertOneLineError(t, code, stderr, 3, "not found")
}

// countingRegistry serves wharf's registry in process and records every request it answers
// ("METHOD /path"); take returns them and starts afresh.
func countingRegistry(t *testing.T) (host string, take func() []string) {
	t.Helper()
	reg, err := server.New(server.Config{Root: t.TempDir(), LogLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reqs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reqs = append(reqs, r.Method+" "+r.URL.Path)
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); reg.Close() })
	return strings.TrimPrefix(srv.URL, "http://"), func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := reqs
		reqs = nil
		return out
	}
}

// The requests a copy makes to a registry: each is needed (the root and each blob probed,
// then what is missing uploaded or mounted, the root pushed once, as its tag), none twice. A
// root the copy was handed resolved is not resolved again, and a root the destination holds
// is tagged in one PUT.
func TestCopyRegistryRequests(t *testing.T) {
	isolateCredentials(t)
	f := newFixture(t) // latest: a manifest, its config and one layer
	host, take := countingRegistry(t)
	repo := "docker://" + host + "/req/img"
	out := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		// HEAD manifest, HEAD config and layer, POST and PUT each, PUT manifest as v1
		{"push", []string{"copy", "-q", "oci:" + f.dir + ":latest", repo + ":v1"}, 8},
		// HEAD manifest (there), PUT it as v2
		{"push again", []string{"copy", "-q", "oci:" + f.dir + ":latest", repo + ":v2"}, 2},
		// HEAD v1, GET manifest, GET config, GET layer
		{"pull", []string{"copy", "-q", repo + ":v1", "oci:" + out + "/a:v1"}, 4},
		// HEAD v1; HEAD manifest at the destination, GET it, HEAD config and layer, mount each, PUT as v1
		{"registry to registry", []string{"copy", "-q", repo + ":v1", "docker://" + host + "/req/other:v1"}, 8},
		// GET tags; v1: HEAD, HEAD at the destination, GET, HEAD ×2, mount ×2, PUT; v2: HEAD, HEAD (there), GET, PUT
		{"sync", []string{"sync", "-q", repo, "docker://" + host + "/req/mirror"}, 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			take()
			mustRun(t, tc.args...)
			if got := take(); len(got) != tc.want {
				t.Fatalf("wharf %s: %d requests, want %d:\n%s", strings.Join(tc.args, " "), len(got), tc.want, strings.Join(got, "\n"))
			}
		})
	}
}
