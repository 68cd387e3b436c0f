//go:build integration

package registry

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wharfoci/wharf/internal/testutil"
)

// The distribution-spec conformance suite, pinned: a Go module fetched through the module proxy.
const (
	conformanceModule  = "github.com/opencontainers/distribution-spec/conformance"
	conformanceVersion = "v0.0.0-20260831232431-97274622c111"
)

// conformanceBinary returns the conformance suite built from the pinned module version, building
// it the first time into .cache/suites/conformance (a go.mod of its own there; the binary is
// named by the version, so a new pin builds anew and an existing binary is reused as it is).
func conformanceBinary(t *testing.T) string {
	t.Helper()
	dir := testutil.CacheDir(t, filepath.Join("suites", "conformance"))
	bin := filepath.Join(dir, "conformance-"+conformanceVersion)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	gobin := testutil.Peer(t, "go")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		mod := "module wharf.test/conformance\n\ngo 1.24\n"
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
			t.Fatalf("write conformance go.mod: %v", err)
		}
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off")
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	for _, args := range [][]string{
		{"get", conformanceModule + "@" + conformanceVersion},
		{"build", "-o", tmp, conformanceModule},
	} {
		t.Logf("in %s: go %s", dir, strings.Join(args, " "))
		cmd := exec.Command(gobin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			t.Fatalf("build the conformance suite: go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatalf("install the conformance suite: %v", err)
	}
	return bin
}

// junitSuites is the part of the suite's junit.xml read here: the totals over every test step
// (attributes of <testsuites>) and the leaf test cases with their status.
type junitSuites struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Errors   int      `xml:"errors,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Disabled int      `xml:"disabled,attr"`
	Suites   []struct {
		Cases []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"`
			Out    string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// confCounts counts test results.
type confCounts struct{ pass, fail, skip, disabled int }

// confGroup is one group of leaf tests: the second component of their names ("OCI Conformance
// Test/<group>/...").
type confGroup struct {
	name string
	confCounts
}

// summarize returns the suite's own totals (every test step, as the suite prints them), the
// leaf tests per group in the order they ran, and the names of the failed leaves.
func (j *junitSuites) summarize() (total confCounts, groups []confGroup, failed []string) {
	total = confCounts{
		pass:     j.Tests - j.Failures - j.Errors - j.Skipped - j.Disabled,
		fail:     j.Failures + j.Errors,
		skip:     j.Skipped,
		disabled: j.Disabled,
	}
	index := map[string]int{}
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			parts := strings.Split(c.Name, "/")
			g := parts[0]
			if len(parts) > 1 {
				g = parts[1]
			}
			i, ok := index[g]
			if !ok {
				i = len(groups)
				index[g] = i
				groups = append(groups, confGroup{name: g})
			}
			switch c.Status {
			case "passed":
				groups[i].pass++
			case "skipped":
				groups[i].skip++
			case "disabled":
				groups[i].disabled++
			default: // failure, error
				groups[i].fail++
				failed = append(failed, c.Name+": "+strings.TrimSpace(c.Out))
			}
		}
	}
	return total, groups, failed
}

// TestConformance runs the OCI distribution-spec conformance suite (the pinned module version,
// spec 1.1) against `wharf serve` with every API and data group enabled, upload cancel too, and
// passes when the suite counts no failure, no skip, nothing disabled and at least one pass. The
// results (junit.xml, report.html, results.yaml, run.log) stay in .cache/suites/conformance/results.
func TestConformance(t *testing.T) {
	bin := conformanceBinary(t)
	r := startRegistry(t, "")
	res := filepath.Join(testutil.CacheDir(t, filepath.Join("suites", "conformance")), "results")
	if err := os.RemoveAll(res); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(res, 0o755); err != nil {
		t.Fatal(err)
	}

	var env []string
	for _, kv := range os.Environ() { // only the settings below: the run does not depend on the caller's
		if !strings.HasPrefix(kv, "OCI_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"OCI_REGISTRY="+r.addr,
		"OCI_TLS=disabled",
		"OCI_RESULTS_DIR="+res,
		"OCI_VERSION=1.1",
		"OCI_LOG=warn",
		"OCI_REPO1=conformance/repo1",
		"OCI_REPO2=conformance/repo2",
		"OCI_TEST_PULL=1",
		"OCI_TEST_PUSH=1",
		"OCI_TEST_CONTENT_DISCOVERY=1",
		"OCI_TEST_CONTENT_MANAGEMENT=1",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true",
	)
	logf, err := os.Create(filepath.Join(res, "run.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = res, env, logf, logf
	start := time.Now()
	runErr := cmd.Run()
	logf.Close()
	t.Logf("conformance %s against %s: %s", conformanceVersion, r.URL, time.Since(start).Round(time.Millisecond))
	if runErr != nil {
		t.Errorf("the conformance suite exited with %v (see %s)", runErr, filepath.Join(res, "run.log"))
	}

	b, err := os.ReadFile(filepath.Join(res, "junit.xml"))
	if err != nil {
		out, _ := os.ReadFile(filepath.Join(res, "run.log"))
		t.Fatalf("read the suite's junit.xml: %v\n%s", err, tail(string(out)))
	}
	var j junitSuites
	if err := xml.Unmarshal(b, &j); err != nil {
		t.Fatalf("parse junit.xml: %v", err)
	}
	total, groups, failed := j.summarize()

	var tbl strings.Builder
	fmt.Fprintf(&tbl, "%-28s %5s %5s %5s %8s\n", "group", "pass", "fail", "skip", "disabled")
	var leaves confCounts
	for _, g := range groups {
		fmt.Fprintf(&tbl, "%-28s %5d %5d %5d %8d\n", g.name, g.pass, g.fail, g.skip, g.disabled)
		leaves.pass += g.pass
		leaves.fail += g.fail
		leaves.skip += g.skip
		leaves.disabled += g.disabled
	}
	fmt.Fprintf(&tbl, "%-28s %5d %5d %5d %8d\n", "leaf tests", leaves.pass, leaves.fail, leaves.skip, leaves.disabled)
	fmt.Fprintf(&tbl, "suite totals: pass %d, fail %d, skip %d, disabled %d; details in %s",
		total.pass, total.fail, total.skip, total.disabled, res)
	t.Logf("conformance groups (leaf tests of junit.xml):\n%s", tbl.String())
	for _, f := range failed {
		t.Logf("failed: %s", f)
	}
	testutil.Report(t, "conformance: pass=%d fail=%d skip=%d disabled=%d", total.pass, total.fail, total.skip, total.disabled)
	if total.fail != 0 || total.skip != 0 || total.disabled != 0 || total.pass == 0 {
		t.Fatalf("conformance: pass=%d fail=%d skip=%d disabled=%d, want fail=0 skip=0 disabled=0 and passes (see %s)",
			total.pass, total.fail, total.skip, total.disabled, filepath.Join(res, "report.html"))
	}
}

// clientTool returns the path of a client program: the one hack/install-deps.sh put in
// .cache/bin (the pinned crane and oras), else the one on PATH.
func clientTool(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(testutil.Root(t), ".cache", "bin", name)
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	return testutil.Peer(t, name)
}

// client runs one client program in a working directory and logs each command and its output.
type client struct {
	path string   // the program
	pre  []string // arguments before the subcommand (podman's storage, …)
	dir  string   // working directory
}

// exec runs the client with args and returns its standard output; a failure to run or a
// non-zero exit is an error that quotes its standard error.
func (c client) exec(t *testing.T, args ...string) (string, error) {
	t.Helper()
	args = append(append([]string{}, c.pre...), args...)
	cmd := exec.Command(c.path, args...)
	cmd.Dir = c.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	t.Logf("$ %s %s\n%s%s", filepath.Base(c.path), strings.Join(args, " "), out.String(), errb.String())
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", filepath.Base(c.path), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// run is exec for a step: a failure fails the step.
func (c client) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.exec(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fails runs the client and fails the step unless the command fails.
func (c client) fails(t *testing.T, args ...string) {
	t.Helper()
	if _, err := c.exec(t, args...); err == nil {
		t.Fatalf("%s %s succeeded, want a failure", filepath.Base(c.path), strings.Join(args, " "))
	}
}

// expect runs the client and fails the step unless a line of its output matches the regular
// expression re.
func (c client) expect(t *testing.T, re string, args ...string) string {
	t.Helper()
	out := c.run(t, args...)
	if !regexp.MustCompile("(?m)" + re).MatchString(out) {
		t.Fatalf("%s %s: no line of the output matches %q", filepath.Base(c.path), strings.Join(args, " "), re)
	}
	return out
}

// hasArtifactType reports whether any JSON object in doc has the field artifactType equal to at.
func hasArtifactType(doc any, at string) bool {
	switch v := doc.(type) {
	case map[string]any:
		if s, ok := v["artifactType"].(string); ok && s == at {
			return true
		}
		for _, e := range v {
			if hasArtifactType(e, at) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasArtifactType(e, at) {
				return true
			}
		}
	}
	return false
}

// TestClients drives `wharf serve` with the real clients, each step a subtest counted passed or
// failed, in a fresh repository namespace: crane (push of an OCI layout, digest, manifest, ls,
// catalog, tag, copy, pull, export, delete by tag and by digest), skopeo (copy oci→docker,
// inspect, list-tags, copy docker→oci, delete), podman with private vfs storage (pull oci:, tag,
// push, rmi, pull, images, search --list-tags), oras (artifact push, pull, manifest fetch, repo
// tags, attach in the default mode and with the referrers API, discover as tree, as json and
// through the referrers API, manifest delete) and a raw GET of the referrers API. Later steps
// use what earlier ones pushed. It passes when every step passed.
func TestClients(t *testing.T) {
	testutil.Need(t, "skopeo", "podman")
	img := testutil.Image(t, "busybox")
	crane := client{path: clientTool(t, "crane"), pre: []string{"--insecure"}}
	orasBin := clientTool(t, "oras")
	r := startRegistry(t, "")
	h := r.addr
	ns := fmt.Sprintf("wharf-test/c%d", time.Now().Unix())
	out := t.TempDir()
	oras := client{path: orasBin, dir: out}
	skopeo := client{path: testutil.Peer(t, "skopeo")}

	// podman's --runroot must stay short (its sockets' paths are limited): not under t.TempDir().
	pm, err := os.MkdirTemp("", "wpc")
	if err != nil {
		t.Fatal(err)
	}
	podman := client{path: testutil.Peer(t, "podman"), pre: []string{
		"--root", filepath.Join(pm, "root"), "--runroot", filepath.Join(pm, "run"), "--tmpdir", filepath.Join(pm, "tmp"),
		"--storage-driver", "vfs", "--events-backend", "file"}}
	t.Cleanup(func() {
		podman.exec(t, "rmi", "-a", "-f")
		os.RemoveAll(pm)
	})
	for _, v := range []struct {
		c    client
		args []string
	}{{crane, []string{"version"}}, {oras, []string{"version"}}, {skopeo, []string{"--version"}}, {podman, []string{"--version"}}} {
		v.c.exec(t, v.args...)
	}
	if err := os.WriteFile(filepath.Join(out, "sbom.json"), []byte(`{"sbom":"wharf-test"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "hello.txt"), []byte("hello artifact\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ref := func(repo string) string { return h + "/" + ns + "/" + repo }
	// discovers fails the step unless `oras discover --format json` lists a referrer of type at.
	discovers := func(t *testing.T, image, at string) {
		t.Helper()
		var doc any
		if err := json.Unmarshal([]byte(oras.run(t, "discover", "--plain-http", "--format", "json", image)), &doc); err != nil {
			t.Fatalf("parse oras discover json: %v", err)
		}
		if !hasArtifactType(doc, at) {
			t.Fatalf("oras discover lists no referrer of type %s", at)
		}
	}
	var podmanID string
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		// crane
		{"crane-push", func(t *testing.T) { crane.run(t, "push", img, ref("crane:latest")) }},
		{"crane-digest", func(t *testing.T) { crane.expect(t, `^sha256:[0-9a-f]{64}$`, "digest", ref("crane:latest")) }},
		{"crane-manifest", func(t *testing.T) { crane.expect(t, `"schemaVersion": ?2`, "manifest", ref("crane:latest")) }},
		{"crane-ls", func(t *testing.T) { crane.expect(t, `^latest$`, "ls", ref("crane")) }},
		{"crane-catalog", func(t *testing.T) { crane.expect(t, "^"+regexp.QuoteMeta(ns+"/crane")+"$", "catalog", h) }},
		{"crane-tag", func(t *testing.T) {
			crane.run(t, "tag", ref("crane:latest"), "v1")
			crane.expect(t, `^v1$`, "ls", ref("crane"))
		}},
		{"crane-copy", func(t *testing.T) { crane.run(t, "copy", ref("crane:latest"), ref("crane-copy:latest")) }},
		{"crane-pull", func(t *testing.T) {
			dst := filepath.Join(out, "crane-pulled")
			crane.run(t, "pull", "--format=oci", ref("crane:latest"), dst)
			if _, err := os.Stat(filepath.Join(dst, "index.json")); err != nil {
				t.Fatalf("crane pull wrote no layout: %v", err)
			}
		}},
		{"crane-export", func(t *testing.T) {
			fs := filepath.Join(out, "crane-export.tar")
			crane.run(t, "export", ref("crane:latest"), fs)
			f, err := os.Open(fs)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tr := tar.NewReader(f)
			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					t.Fatalf("the exported file system has no bin/busybox")
				}
				if err != nil {
					t.Fatalf("read the exported file system: %v", err)
				}
				if strings.TrimPrefix(hdr.Name, "./") == "bin/busybox" {
					return
				}
			}
		}},
		{"crane-delete-tag", func(t *testing.T) {
			crane.run(t, "delete", ref("crane:v1"))
			crane.fails(t, "digest", ref("crane:v1"))
		}},
		{"crane-delete-digest", func(t *testing.T) {
			d := strings.TrimSpace(crane.run(t, "digest", ref("crane-copy:latest")))
			crane.run(t, "delete", ref("crane-copy@"+d))
			crane.fails(t, "manifest", ref("crane-copy@"+d))
		}},
		// skopeo
		{"skopeo-push", func(t *testing.T) {
			skopeo.run(t, "copy", "-q", "--dest-tls-verify=false", "oci:"+img+":latest", "docker://"+ref("skopeo:latest"))
		}},
		{"skopeo-inspect", func(t *testing.T) {
			skopeo.expect(t, `"Digest": "sha256:`, "inspect", "--tls-verify=false", "docker://"+ref("skopeo:latest"))
		}},
		{"skopeo-list-tags", func(t *testing.T) {
			skopeo.expect(t, `"latest"`, "list-tags", "--tls-verify=false", "docker://"+ref("skopeo"))
		}},
		{"skopeo-pull", func(t *testing.T) {
			skopeo.run(t, "copy", "-q", "--src-tls-verify=false", "docker://"+ref("skopeo:latest"), "oci:"+filepath.Join(out, "skopeo-pulled")+":latest")
		}},
		{"skopeo-delete", func(t *testing.T) {
			skopeo.run(t, "delete", "--tls-verify=false", "docker://"+ref("skopeo:latest"))
			skopeo.fails(t, "inspect", "--tls-verify=false", "docker://"+ref("skopeo:latest"))
		}},
		// podman, with storage of its own
		{"podman-load", func(t *testing.T) {
			// podman names the image after the layout's path, which must then be a valid
			// repository name (no upper case, no component starting with a dot): a copy in pm.
			src := filepath.Join(pm, "busybox")
			if err := os.CopyFS(src, os.DirFS(img)); err != nil {
				t.Fatalf("copy the image layout: %v", err)
			}
			podman.run(t, "pull", "-q", "oci:"+src+":latest")
		}},
		{"podman-tag", func(t *testing.T) {
			ids := strings.Fields(podman.run(t, "images", "-q"))
			if len(ids) == 0 {
				t.Fatalf("podman images lists no image")
			}
			podmanID = ids[0]
			podman.run(t, "tag", podmanID, ref("podman:latest"))
		}},
		{"podman-push", func(t *testing.T) { podman.run(t, "push", "-q", "--tls-verify=false", ref("podman:latest")) }},
		{"podman-rmi", func(t *testing.T) {
			podman.run(t, "rmi", "-a", "-f")
			if ids := strings.Fields(podman.run(t, "images", "-q")); len(ids) != 0 {
				t.Fatalf("podman still has images %v", ids)
			}
		}},
		{"podman-pull", func(t *testing.T) { podman.run(t, "pull", "-q", "--tls-verify=false", ref("podman:latest")) }},
		{"podman-images", func(t *testing.T) { podman.expect(t, regexp.QuoteMeta(ref("podman")), "images") }},
		{"podman-search-tags", func(t *testing.T) {
			podman.expect(t, `\blatest\b`, "search", "--list-tags", "--tls-verify=false", ref("podman"))
		}},
		// oras: artifacts and referrers
		{"oras-push", func(t *testing.T) {
			oras.run(t, "push", "--plain-http", ref("art:v1"), "--artifact-type", "application/vnd.example.hello", "hello.txt:text/plain")
		}},
		{"oras-pull", func(t *testing.T) {
			dst := filepath.Join(out, "oras-out")
			oras.run(t, "pull", "--plain-http", "-o", dst, ref("art:v1"))
			if b, err := os.ReadFile(filepath.Join(dst, "hello.txt")); err != nil || string(b) != "hello artifact\n" {
				t.Fatalf("pulled hello.txt: %q, %v", b, err)
			}
		}},
		{"oras-manifest-fetch", func(t *testing.T) {
			oras.expect(t, `application/vnd.example.hello`, "manifest", "fetch", "--plain-http", ref("art:v1"))
		}},
		{"oras-repo-tags", func(t *testing.T) { oras.expect(t, `^v1$`, "repo", "tags", "--plain-http", ref("art")) }},
		{"oras-attach", func(t *testing.T) {
			oras.run(t, "attach", "--plain-http", "--artifact-type", "application/vnd.example.sbom", ref("crane:latest"), "sbom.json:application/json")
		}},
		{"oras-discover-tree", func(t *testing.T) {
			oras.expect(t, `application/vnd\.example\.sbom`, "discover", "--plain-http", "--format", "tree", ref("crane:latest"))
		}},
		{"oras-discover-json", func(t *testing.T) { discovers(t, ref("crane:latest"), "application/vnd.example.sbom") }},
		{"oras-attach-api", func(t *testing.T) {
			oras.run(t, "attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.example.sig", ref("crane:latest"), "hello.txt")
		}},
		{"oras-discover-attached-api", func(t *testing.T) { discovers(t, ref("crane:latest"), "application/vnd.example.sig") }},
		{"oras-discover-api", func(t *testing.T) {
			oras.expect(t, `application/vnd\.example\.s(bom|ig)`, "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", ref("crane:latest"))
		}},
		{"oras-manifest-delete", func(t *testing.T) {
			oras.run(t, "manifest", "delete", "--plain-http", "--force", ref("art:v1"))
			oras.fails(t, "manifest", "fetch", "--plain-http", ref("art:v1"))
		}},
		// the referrers API itself
		{"raw-referrers-api", func(t *testing.T) {
			d := strings.TrimSpace(crane.run(t, "digest", ref("crane:latest")))
			resp, err := http.Get(r.URL + "/v2/" + ns + "/crane/referrers/" + d)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read referrers: %v", err)
			}
			ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
			t.Logf("GET /v2/%s/crane/referrers/%s: %d %s\n%s", ns, d, resp.StatusCode, ct, b)
			if resp.StatusCode != 200 || ct != "application/vnd.oci.image.index.v1+json" {
				t.Fatalf("referrers: status %d, content type %q, want 200 and an OCI image index", resp.StatusCode, ct)
			}
			var idx struct {
				Manifests *[]json.RawMessage `json:"manifests"`
			}
			if err := json.Unmarshal(b, &idx); err != nil || idx.Manifests == nil {
				t.Fatalf("referrers: not an image index with manifests (%v)", err)
			}
		}},
	}

	var passed, failed int
	var failures []string
	for _, s := range steps {
		if t.Run(s.name, s.run) {
			passed++
		} else {
			failed++
			failures = append(failures, s.name)
		}
	}
	if failed > 0 {
		t.Logf("failed steps: %s", strings.Join(failures, " "))
	}
	testutil.Report(t, "clients: passed=%d failed=%d", passed, failed)
}
