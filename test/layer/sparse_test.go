//go:build integration

package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/internal/testutil"
)

// ociLayout reads and extends an image layout the way a test needs: the manifest of a tag,
// its blobs, a new image made of a tag's layers and one more.
type ociLayout struct{ dir string }

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

func (l ociLayout) blob(t *testing.T, digest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (l ociLayout) index(t *testing.T) map[string]any {
	t.Helper()
	var idx map[string]any
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil {
		t.Fatalf("read index.json: %v", err)
	}
	return idx
}

// manifest is the manifest tagged tag.
func (l ociLayout) manifest(t *testing.T, tag string) manifest {
	t.Helper()
	for _, m := range l.index(t)["manifests"].([]any) {
		d := m.(map[string]any)
		if a, _ := d["annotations"].(map[string]any); a["org.opencontainers.image.ref.name"] == tag {
			var mf manifest
			if err := json.Unmarshal(l.blob(t, d["digest"].(string)), &mf); err != nil {
				t.Fatal(err)
			}
			return mf
		}
	}
	t.Fatalf("no tag %s in %s", tag, l.dir)
	return manifest{}
}

// lastLayer is the uncompressed last layer of the image tagged tag.
func (l ociLayout) lastLayer(t *testing.T, tag string) []byte {
	t.Helper()
	mf := l.manifest(t, tag)
	d := mf.Layers[len(mf.Layers)-1]
	b := l.blob(t, d.Digest)
	if strings.HasSuffix(d.MediaType, "+gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	} else if !strings.HasSuffix(d.MediaType, ".tar") {
		t.Fatalf("layer media type %s", d.MediaType)
	}
	return b
}

func (l ociLayout) put(t *testing.T, b []byte) descriptor {
	t.Helper()
	sum := sha256.Sum256(b)
	d := descriptor{Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", hex.EncodeToString(sum[:])), b, 0o444); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	return d
}

// addLayer tags as tag the image tagged base with the uncompressed layer tarball on top.
func (l ociLayout) addLayer(t *testing.T, base, tag string, tarball []byte) {
	t.Helper()
	mf := l.manifest(t, base)
	var cfg map[string]any
	if err := json.Unmarshal(l.blob(t, mf.Config.Digest), &cfg); err != nil {
		t.Fatal(err)
	}
	ld := l.put(t, tarball)
	ld.MediaType = "application/vnd.oci.image.layer.v1.tar"
	rootfs := cfg["rootfs"].(map[string]any)
	rootfs["diff_ids"] = append(rootfs["diff_ids"].([]any), ld.Digest)
	cb, _ := json.Marshal(cfg)
	cd := l.put(t, cb)
	cd.MediaType = mf.Config.MediaType
	mf.Config, mf.Layers = cd, append(mf.Layers, ld)
	mb, _ := json.Marshal(mf)
	md := l.put(t, mb)
	md.MediaType = "application/vnd.oci.image.manifest.v1+json"
	md.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	idx := l.index(t)
	idx["manifests"] = append(idx["manifests"].([]any), md)
	ib, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), ib, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tarEntries lists an uncompressed tar as archive/tar reads it: name=content for regular
// files, the name alone for the rest.
func tarEntries(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			c, _ := io.ReadAll(tr)
			out = append(out, h.Name+"="+string(c))
		} else {
			out = append(out, h.Name)
		}
	}
}

// TestRepackOddNames: names holding newlines and other control bytes, or the bytes of a
// wharf.snapshot record, survive unpack and repack: a repack without a change writes an empty
// layer, a repack after one change writes exactly that change.
func TestRepackOddNames(t *testing.T) {
	need(t)
	bin := wharfBin(t)
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	run(t, "cp", "-a", testImage(t, "busybox"), layout)
	l := ociLayout{layout}
	b1 := filepath.Join(work, "b1")
	run(t, bin, "unpack", "oci:"+layout+":latest", b1)
	record := "a\x01x\xa4\x83\x02\x01\x01\x02\x02\x02\x01\x01" // a snapshot record of "x", after an "a"
	names := []string{"new\nline", "\n", "cr\rret", "tab\there", "ctl\x01\x1b[31m\x7f", "wharf-snapshot-1\n", record}
	for i, n := range names {
		d := filepath.Join(b1, "rootfs", "odd", n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, n), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, bin, "repack", "--compress", "none", b1, "oci:"+layout+":odd")
	if got := len(tarEntries(t, l.lastLayer(t, "odd"))); got != 1+2*len(names) {
		t.Fatalf("the odd layer holds %d entries, want %d", got, 1+2*len(names))
	}

	b2 := filepath.Join(work, "b2")
	run(t, bin, "unpack", "oci:"+layout+":odd", b2)
	run(t, bin, "repack", "--compress", "none", b2, "oci:"+layout+":unchanged")
	if got := tarEntries(t, l.lastLayer(t, "unchanged")); len(got) != 0 {
		t.Errorf("repack without a change wrote %q", got)
	}
	time.Sleep(10 * time.Millisecond)
	changed := "odd/" + record + "/" + record
	if err := os.WriteFile(filepath.Join(b2, "rootfs", changed), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, bin, "repack", "--compress", "none", b2, "oci:"+layout+":changed")
	got, want := tarEntries(t, l.lastLayer(t, "changed")), []string{changed + "=changed"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("repack after one change wrote %q, want %q", got, want)
	}
	b3 := filepath.Join(work, "b3")
	run(t, bin, "unpack", "oci:"+layout+":changed", b3)
	compareTrees(t, "odd names: unpack of the repacked image vs the changed bundle", describe(t, filepath.Join(b3, "rootfs")), describe(t, filepath.Join(b2, "rootfs")))
}

// sparseFile is a file with holes made for the tests: its apparent size and its data.
type sparseFile struct {
	path string
	size int64
	data map[int64]string
}

// sparseFiles are the classic case (lastlog after useradd with a large UID), a file that is
// all hole, one that ends in a hole.
var sparseFiles = []sparseFile{
	{"var/log/lastlog", 1 << 30, map[int64]string{0: "root record", 292 * 3000000: "user record"}},
	{"holeonly", 100 << 20, nil},
	{"tailhole", 64 << 10, map[int64]string{10: "x"}},
}

func makeSparseFiles(t *testing.T, root string) {
	t.Helper()
	for _, s := range sparseFiles {
		p := filepath.Join(root, s.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(s.size); err != nil {
			t.Fatal(err)
		}
		for off, d := range s.data {
			if _, err := f.WriteAt([]byte(d), off); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
}

// fileState is what a reader made of a file: apparent size, space taken, content digest.
type fileState struct {
	size, blocks int64
	sha          string
}

func stateOf(t *testing.T, p string) fileState {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatalf("%v", err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return fileState{st.Size, st.Blocks, hex.EncodeToString(h.Sum(nil))[:16]}
}

// checkReader compares what a reader extracted under root with the source files: same
// content and apparent size; same space (holes kept) when keepsHoles.
func checkReader(t *testing.T, reader, root string, want map[string]fileState, keepsHoles bool) {
	t.Helper()
	holes := "holes kept"
	for _, s := range sparseFiles {
		got, w := stateOf(t, filepath.Join(root, s.path)), want[s.path]
		if got.size != w.size || got.sha != w.sha {
			t.Errorf("%s: %s: size %d sha %s, want size %d sha %s", reader, s.path, got.size, got.sha, w.size, w.sha)
		}
		if got.blocks > w.blocks {
			holes = "holes written as zeros"
			if keepsHoles {
				t.Errorf("%s: %s takes %d blocks, the source %d: holes were written", reader, s.path, got.blocks, w.blocks)
			}
		}
		t.Logf("%s: %s size=%d blocks=%d sha=%s (source: blocks=%d)", reader, s.path, got.size, got.blocks, got.sha, w.blocks)
	}
	testutil.Report(t, "sparse layer read by %s: %d files, same content and size, %s", reader, len(sparseFiles), holes)
}

// TestSparseReaders: wharf repacks files with holes as PAX 1.0 sparse entries, and every
// reader tried reads the layer back to the same files: wharf unpack and GNU tar keep the
// holes; umoci, podman (containers/storage) and archive/tar (containerd's and podman's tar
// reader) give the same content and apparent size, holes written as zeros.
func TestSparseReaders(t *testing.T) {
	need(t, "umoci", "tar", "podman")
	bin := wharfBin(t)
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	run(t, "cp", "-a", testImage(t, "busybox"), layout)
	l := ociLayout{layout}
	src := filepath.Join(work, "src")
	run(t, bin, "unpack", "oci:"+layout+":latest", src)
	makeSparseFiles(t, filepath.Join(src, "rootfs"))
	want := map[string]fileState{}
	for _, s := range sparseFiles {
		want[s.path] = stateOf(t, filepath.Join(src, "rootfs", s.path))
	}
	run(t, bin, "repack", src, "oci:"+layout+":sparse")
	mf := l.manifest(t, "sparse")
	if sz := mf.Layers[len(mf.Layers)-1].Size; sz > 64<<10 {
		t.Errorf("the layer of %d bytes of sparse files is %d bytes", 1<<30+100<<20+64<<10, sz)
	}
	layer := l.lastLayer(t, "sparse")
	for _, s := range sparseFiles {
		dir, base := filepath.Split(s.path)
		if !bytes.Contains(layer, []byte(dir+"GNUSparseFile.0/"+base)) || !bytes.Contains(layer, []byte("GNU.sparse.name="+s.path+"\n")) {
			t.Errorf("%s is not a PAX 1.0 sparse entry", s.path)
		}
	}

	t.Run("wharf", func(t *testing.T) {
		b := filepath.Join(work, "wharf")
		run(t, bin, "unpack", "oci:"+layout+":sparse", b)
		checkReader(t, "wharf unpack", filepath.Join(b, "rootfs"), want, true)
	})
	t.Run("umoci", func(t *testing.T) {
		b := filepath.Join(work, "umoci")
		run(t, "umoci", "unpack", "--image", layout+":sparse", b)
		checkReader(t, "umoci unpack", filepath.Join(b, "rootfs"), want, false)
		noSparseNames(t, filepath.Join(b, "rootfs"))
	})
	t.Run("GNU tar", func(t *testing.T) {
		x := filepath.Join(work, "gnutar")
		os.Mkdir(x, 0o755)
		p := filepath.Join(work, "layer.tar")
		os.WriteFile(p, layer, 0o644)
		run(t, "tar", "-C", x, "-xf", p)
		checkReader(t, "GNU tar -xf", x, want, true)
		noSparseNames(t, x)
	})
	t.Run("archive/tar", func(t *testing.T) {
		got := map[string]fileState{}
		tr := tar.NewReader(bytes.NewReader(layer))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.New()
			n, err := io.Copy(sum, tr)
			if err != nil || n != h.Size {
				t.Fatalf("%s: read %d of %d bytes: %v", h.Name, n, h.Size, err)
			}
			got[h.Name] = fileState{size: h.Size, sha: hex.EncodeToString(sum.Sum(nil))[:16]}
		}
		for _, s := range sparseFiles {
			w := want[s.path]
			if g := got[s.path]; g.size != w.size || g.sha != w.sha {
				t.Errorf("archive/tar: %s: %+v, want size %d sha %s", s.path, g, w.size, w.sha)
			}
		}
		testutil.Report(t, "sparse layer read by archive/tar (containerd's and podman's reader): %d files, same content and size", len(sparseFiles))
	})
	t.Run("podman", func(t *testing.T) {
		p := []string{"--root", filepath.Join(work, "proot"), "--runroot", filepath.Join(work, "prun"), "--storage-driver", "vfs"}
		podman := func(args ...string) string {
			return strings.TrimSpace(run(t, "podman", append(append([]string{}, p...), args...)...))
		}
		// podman names the image after the layout's path, which must be lowercase
		lc, err := os.MkdirTemp("", "wharf-sparse-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(lc)
		run(t, "cp", "-a", layout, filepath.Join(lc, "layout"))
		id := podman("pull", "-q", "oci:"+filepath.Join(lc, "layout")+":sparse")
		mnt := podman("image", "mount", id)
		defer podman("image", "unmount", id)
		checkReader(t, "podman (containers/storage)", mnt, want, false)
		noSparseNames(t, mnt)
	})
}

// noSparseNames fails when a reader left a GNUSparseFile.0 directory (what a reader that does
// not know the format extracts).
func noSparseNames(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "GNUSparseFile.") {
			t.Errorf("%s extracted", p)
		}
		return nil
	})
}

// TestUnpackGNUTarSparse: a layer GNU tar wrote with --sparse, in each of its formats (old
// GNU, PAX 0.0, 0.1 and 1.0), unpacks with wharf to the files, holes kept; umoci agrees on
// the content of the PAX ones and refuses old GNU's 'S' entries (why repack writes PAX 1.0).
func TestUnpackGNUTarSparse(t *testing.T) {
	need(t, "umoci", "tar")
	bin := wharfBin(t)
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	run(t, "cp", "-a", testImage(t, "busybox"), layout)
	l := ociLayout{layout}
	src := filepath.Join(work, "src")
	makeSparseFiles(t, src)
	want := map[string]fileState{}
	for _, s := range sparseFiles {
		want[s.path] = stateOf(t, filepath.Join(src, s.path))
	}
	paths := make([]string, len(sparseFiles))
	for i, s := range sparseFiles {
		paths[i] = s.path
	}
	for _, format := range [][]string{{"--format=gnu"}, {"--format=posix", "--sparse-version=0.0"}, {"--format=posix", "--sparse-version=0.1"}, {"--format=posix", "--sparse-version=1.0"}} {
		name := strings.Join(format, " ")
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command("tar", append(append([]string{"-C", src, "--sparse", "-cf", "-"}, format...), paths...)...)
			tb, err := cmd.Output()
			if err != nil {
				t.Fatalf("tar: %v", err)
			}
			tag := strings.NewReplacer("--format=", "", " --sparse-version=", "-").Replace(name)
			l.addLayer(t, "latest", tag, tb)
			b := filepath.Join(work, "wharf-"+tag)
			run(t, bin, "unpack", "oci:"+layout+":"+tag, b)
			checkReader(t, "wharf unpack of GNU tar "+name, filepath.Join(b, "rootfs"), want, true)
			u := filepath.Join(work, "umoci-"+tag)
			r := testutil.Exec(t, "umoci", "unpack", "--image", layout+":"+tag, u)
			if tag == "gnu" && r.Code != 0 && strings.Contains(r.Stderr, "unknown typeflag") {
				// umoci 0.4.7 takes only the entry types it knows: not old GNU's 'S'
				testutil.Report(t, "umoci unpack refuses GNU tar --format=gnu sparse entries: %s", lastLine(r.Stderr))
				return
			}
			if r.Code != 0 {
				t.Fatalf("umoci unpack: exit %d: %s", r.Code, r.Stderr)
			}
			for _, s := range sparseFiles {
				if g, w := stateOf(t, filepath.Join(u, "rootfs", s.path)), want[s.path]; g.size != w.size || g.sha != w.sha {
					t.Errorf("umoci: %s: %+v, want %+v", s.path, g, w)
				}
			}
		})
	}
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
