package layout

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

type tarEntry struct {
	name, body, link string
	typ              byte
}

func writeTar(t *testing.T, entries []tarEntry) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "image.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

// a layer tar holding one file, and its gzip form
func layerTars(t *testing.T) (string, string) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi\n"))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	return raw.String(), gz.String()
}

func normalize(s string) (string, error) { return "n/" + strings.ReplaceAll(s, ":", "_"), nil }

func TestOpenDockerArchive(t *testing.T) {
	ctx := context.Background()
	raw, gz := layerTars(t)
	rawID := digest.FromString(raw)
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + rawID.String() + `","` + rawID.String() + `"]}}`
	// docker save's legacy layout: <id>/layer.tar, the second image's layer a symlink to the first
	file := writeTar(t, []tarEntry{
		{name: "abc/", typ: tar.TypeDir},
		{name: "abc/layer.tar", body: raw},
		{name: "def/layer.tar", typ: tar.TypeSymlink, link: "../abc/layer.tar"},
		{name: "gz.tar", body: gz},
		{name: "cfg.json", body: cfg},
		{name: "manifest.json", body: `[{"Config":"cfg.json","RepoTags":["busybox:v1","busybox:v2"],"Layers":["abc/layer.tar","def/layer.tar"]},
			{"Config":"cfg.json","RepoTags":null,"Layers":["gz.tar","./abc/layer.tar"]}]`},
	})
	a, err := OpenDockerArchive(ctx, file, t.TempDir(), normalize)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	d, err := a.Resolve(ctx, "n/busybox_v1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := content.ReadAll(ctx, a, d, 0)
	m, err := image.ParseManifest(d, b)
	if err != nil || m.MediaType != image.MediaTypeDockerManifest || m.Config.MediaType != image.MediaTypeDockerConfig ||
		len(m.Layers) != 2 || m.Layers[0].Digest != rawID || m.Layers[1].Digest != rawID || m.Layers[0].MediaType != image.MediaTypeDockerLayer {
		t.Fatalf("manifest %+v %v", m, err)
	}
	if d2, err := a.Resolve(ctx, "n/busybox_v2"); err != nil || d2.Digest != d.Digest {
		t.Fatalf("second RepoTag: %v %v", d2, err)
	}
	entries, _ := a.List(ctx)
	if len(entries) != 3 {
		t.Fatalf("index.json: %+v", entries)
	}
	untagged := entries[2].Descriptor
	b, _ = content.ReadAll(ctx, a, untagged, 0)
	m2, _ := image.ParseManifest(untagged, b)
	if m2.Layers[0].MediaType != image.MediaTypeDockerLayerGzip || entries[2].Name != "" {
		t.Fatalf("the untagged image: %+v", m2)
	}
	if err := a.Save(ctx); !errors.Is(err, errdef.ErrUnsupported) {
		t.Fatalf("Save of a docker-archive: %v", err)
	}
}

func TestOpenDockerArchiveRefuses(t *testing.T) {
	ctx := context.Background()
	raw, _ := layerTars(t)
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + digest.FromString(raw).String() + `"]}}`
	man := `[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l.tar"]}]`
	for name, tc := range map[string]struct {
		entries []tarEntry
		want    error
	}{
		"no manifest.json":    {[]tarEntry{{name: "l.tar", body: raw}}, errdef.ErrNotFound},
		"bad manifest.json":   {[]tarEntry{{name: "manifest.json", body: "{"}}, errdef.ErrInvalidArgument},
		"empty manifest.json": {[]tarEntry{{name: "manifest.json", body: "[]"}}, errdef.ErrNotFound},
		"missing layer":       {[]tarEntry{{name: "c.json", body: cfg}, {name: "manifest.json", body: man}}, errdef.ErrNotFound},
		"link out of the archive": {[]tarEntry{{name: "c.json", body: cfg}, {name: "l.tar", typ: tar.TypeSymlink, link: "../../etc/passwd"},
			{name: "manifest.json", body: man}}, errdef.ErrNotFound},
		"link loop": {[]tarEntry{{name: "c.json", body: cfg}, {name: "l.tar", typ: tar.TypeSymlink, link: "m.tar"},
			{name: "m.tar", typ: tar.TypeSymlink, link: "l.tar"}, {name: "manifest.json", body: man}}, errdef.ErrNotFound},
		"a device":                 {[]tarEntry{{name: "dev", typ: tar.TypeChar}}, errdef.ErrUnsafePath},
		"a config that is not one": {[]tarEntry{{name: "c.json", body: "not json"}, {name: "l.tar", body: raw}, {name: "manifest.json", body: man}}, errdef.ErrInvalidArgument},
		"too big a manifest.json":  {[]tarEntry{{name: "manifest.json", body: strings.Repeat(" ", content.MaxDocumentSize+1)}}, errdef.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			file := writeTar(t, tc.entries)
			tmp := t.TempDir()
			a, err := OpenDockerArchive(ctx, file, tmp, normalize)
			if err == nil {
				a.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenDockerArchive: %v, want %v", err, tc.want)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Fatalf("left behind: %v", left)
			}
		})
	}
}
