package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/content/memory"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/rootfs"
)

func writeRoot(t *testing.T, files map[string]string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0755)
		if target, ok := strings.CutPrefix(c, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

const passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34:www:/var/www:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n"
const group = "root:x:0:\nwww:x:34:alice\nstaff:x:50:alice,bob\nalice:x:1000:\n"

func TestResolveUser(t *testing.T) {
	root := writeRoot(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	tests := []struct {
		name, user string
		want       User
		wantErr    error
	}{
		{"empty", "", User{}, nil},
		{"numeric uid", "1234", User{UID: 1234}, nil},
		{"numeric uid in passwd", "33", User{UID: 33, GID: 34}, nil},
		{"numeric uid:gid", "5:6", User{UID: 5, GID: 6}, nil},
		{"name", "alice", User{UID: 1000, GID: 1000, AdditionalGids: []uint32{34, 50}}, nil},
		{"name:group", "alice:staff", User{UID: 1000, GID: 50}, nil},
		{"name:gid", "www:7", User{UID: 33, GID: 7}, nil},
		{"uid:group", "9:staff", User{UID: 9, GID: 50}, nil},
		{"unknown user", "mallory", User{}, errdef.ErrInvalidArgument},
		{"unknown group", "alice:nogroup", User{}, errdef.ErrInvalidArgument},
		{"uid beyond int32", "2147483648", User{}, errdef.ErrInvalidArgument},
		{"gid beyond int32", "0:4294967296", User{}, errdef.ErrInvalidArgument},
		{"empty group", "alice:", User{}, errdef.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveUser(root, tc.user)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveUserConfined(t *testing.T) {
	// /etc/passwd is a symlink to the host's: it resolves inside the root, where it is missing.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "passwd"), []byte("evil:x:4242:4242::/:/bin/sh\n"), 0644)
	root := writeRoot(t, map[string]string{"etc/passwd": "symlink:" + filepath.Join(host, "passwd")})
	if _, err := ResolveUser(root, "evil"); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("user from a host file through a symlink: %v", err)
	}
	root2 := writeRoot(t, map[string]string{"etc/passwd": "symlink:../../../../../../../../" + filepath.Join(host, "passwd")})
	if _, err := ResolveUser(root2, "evil"); err == nil {
		t.Fatalf("user from a host file through a relative symlink")
	}
}

func TestRuntimeConfig(t *testing.T) {
	root := writeRoot(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	img := &ocispec.Image{
		Created:  &created,
		Author:   "someone",
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64", Variant: "v2"},
		Config: ocispec.ImageConfig{
			Entrypoint:   []string{"/bin/app", "--flag"},
			Cmd:          []string{"serve"},
			Env:          []string{"A=1"},
			WorkingDir:   "srv/../app",
			User:         "www",
			Volumes:      map[string]struct{}{"/data": {}, "/cache/../logs": {}},
			ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
			StopSignal:   "SIGTERM",
			Labels:       map[string]string{AnnotationArch: "from-label", "x": "y"},
		},
	}
	s, err := RuntimeConfig(img, root, ConfigOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/app", "--flag", "serve"}; !reflect.DeepEqual(s.Process.Args, want) {
		t.Errorf("args %v", s.Process.Args)
	}
	if want := []string{"A=1", DefaultPath}; !reflect.DeepEqual(s.Process.Env, want) {
		t.Errorf("env %v", s.Process.Env)
	}
	if s.Process.Cwd != "/app" {
		t.Errorf("cwd %q", s.Process.Cwd)
	}
	if s.Process.User.UID != 33 || s.Process.User.GID != 34 {
		t.Errorf("user %+v", s.Process.User)
	}
	want := map[string]string{
		AnnotationOS: "linux", AnnotationArch: "from-label", AnnotationVariant: "v2", AnnotationAuthor: "someone",
		AnnotationCreated: "2024-01-02T03:04:05Z", AnnotationStopSignal: "SIGTERM", AnnotationExposedPorts: "53/udp,80/tcp", "x": "y",
	}
	if !reflect.DeepEqual(s.Annotations, want) {
		t.Errorf("annotations %v", s.Annotations)
	}
	var dests []string
	for _, m := range s.Mounts[len(DefaultSpec().Mounts):] {
		dests = append(dests, m.Destination)
	}
	if !reflect.DeepEqual(dests, []string{"/logs", "/data"}) {
		t.Errorf("volume mounts %v", dests)
	}

	bad := []struct {
		name string
		mod  func(c *ocispec.ImageConfig)
	}{
		{"proc self fd cwd", func(c *ocispec.ImageConfig) { c.WorkingDir = "/proc/self/fd/7" }},
		{"proc cwd via dotdot", func(c *ocispec.ImageConfig) { c.WorkingDir = "/x/../../proc/1/cwd" }},
		{"unknown user", func(c *ocispec.ImageConfig) { c.User = "nobody-here" }},
		{"root volume", func(c *ocispec.ImageConfig) { c.Volumes = map[string]struct{}{"/..": {}} }},
		{"proc volume", func(c *ocispec.ImageConfig) { c.Volumes = map[string]struct{}{"/proc/sys": {}} }},
		{"sys cwd", func(c *ocispec.ImageConfig) { c.WorkingDir = "/sys/kernel" }},
		{"sys volume", func(c *ocispec.ImageConfig) { c.Volumes = map[string]struct{}{"sys/x": {}} }},
		{"empty volume", func(c *ocispec.ImageConfig) { c.Volumes = map[string]struct{}{"": {}} }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			i2 := *img
			tc.mod(&i2.Config)
			if _, err := RuntimeConfig(&i2, root, ConfigOptions{}); err == nil {
				t.Errorf("converted; want an error")
			}
		})
	}
	s, _ = RuntimeConfig(&ocispec.Image{}, root, ConfigOptions{UIDMap: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}})
	if s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Type != specs.UserNamespace || len(s.Linux.UIDMappings) != 1 {
		t.Errorf("user namespace not added")
	}
}

// testImage stores a one-layer image in a memory store.
func testImage(t *testing.T, files map[string]string, diffIDOverride digest.Digest) (*memory.Store, ocispec.Descriptor) {
	t.Helper()
	ctx := context.Background()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	var gzb bytes.Buffer
	zw := gzip.NewWriter(&gzb)
	zw.Write(tb.Bytes())
	zw.Close()
	s := memory.New()
	ld, err := content.PushBytes(ctx, s, ocispec.MediaTypeImageLayerGzip, gzb.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	diffID := digest.FromBytes(tb.Bytes())
	if diffIDOverride != "" {
		diffID = diffIDOverride
	}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		Config: ocispec.ImageConfig{Cmd: []string{"/bin/sh"}}}
	cb, _ := json.Marshal(cfg)
	cd, err := content.PushBytes(ctx, s, ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{ld}}
	m.SchemaVersion = 2
	mb, _ := json.Marshal(m)
	md, err := content.PushBytes(ctx, s, ocispec.MediaTypeImageManifest, mb)
	if err != nil {
		t.Fatal(err)
	}
	return s, md
}

func TestUnpack(t *testing.T) {
	s, md := testImage(t, map[string]string{"etc/hello": "world"}, "")
	parent := t.TempDir()
	b := filepath.Join(parent, "bundle")
	res, err := Unpack(context.Background(), s, md, b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Layers) != 1 {
		t.Fatalf("layers %d", len(res.Layers))
	}
	if got, _ := os.ReadFile(filepath.Join(b, "rootfs/etc/hello")); string(got) != "world" {
		t.Errorf("content %q", got)
	}
	st, _ := os.Stat(b)
	if st.Mode().Perm() != 0700 {
		t.Errorf("bundle mode %v", st.Mode())
	}
	for _, f := range []string{"config.json", MetaFile, SnapshotFile} {
		if _, err := os.Stat(filepath.Join(b, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	var spec specs.Spec
	cb, _ := os.ReadFile(filepath.Join(b, "config.json"))
	if err := json.Unmarshal(cb, &spec); err != nil || spec.Process.Args[0] != "/bin/sh" || spec.Root.Path != "rootfs" {
		t.Errorf("config.json: %v %+v", err, spec.Process)
	}
	if _, err := Unpack(context.Background(), s, md, b, Options{}); !errors.Is(err, errdef.ErrAlreadyExists) {
		t.Errorf("second unpack: %v", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries, want the bundle only", len(entries))
	}
}

func TestUnpackFailureLeavesNothing(t *testing.T) {
	s, md := testImage(t, map[string]string{"a": "b"}, digest.FromString("not the diffID"))
	parent := t.TempDir()
	_, err := Unpack(context.Background(), s, md, filepath.Join(parent, "bundle"), Options{})
	if !errors.Is(err, errdef.ErrDigestMismatch) {
		t.Fatalf("got %v, want a digest mismatch", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("failed unpack left %v", entries[0].Name())
	}
}
