package image

import (
	"errors"
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

func TestSetEnv(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env, kv   []string
		want      []string
		unchanged bool
	}{
		{name: "append", env: []string{"A=1"}, kv: []string{"B=2"}, want: []string{"A=1", "B=2"}},
		{name: "replace in place", env: []string{"A=1", "B=2", "C=3"}, kv: []string{"B=x"}, want: []string{"A=1", "B=x", "C=3"}},
		{name: "every entry of the key", env: []string{"A=1", "A=2"}, kv: []string{"A=3"}, want: []string{"A=3", "A=3"}},
		{name: "key is up to the first =", env: []string{"A=b=c"}, kv: []string{"A=d=e"}, want: []string{"A=d=e"}},
		{name: "a prefix is another key", env: []string{"PATH=/bin"}, kv: []string{"PAT=x"}, want: []string{"PATH=/bin", "PAT=x"}},
		{name: "entry without =", env: []string{"A=1"}, kv: []string{"A"}, want: []string{"A"}},
		{name: "in order", env: nil, kv: []string{"A=1", "A=2"}, want: []string{"A=2"}},
		{name: "nothing", env: []string{"A=1"}, kv: nil, want: []string{"A=1"}},
		{name: "wharf run's", env: []string{"PATH=/bin", "A=1", "B"}, kv: []string{"A=2", "C=3", "B=x"}, want: []string{"PATH=/bin", "A=2", "B=x", "C=3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append([]string(nil), tc.env...)
			if got := SetEnv(tc.env, tc.kv...); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SetEnv(%q, %q) = %q, want %q", tc.env, tc.kv, got, tc.want)
			}
			if !reflect.DeepEqual(before, tc.env) {
				t.Fatalf("SetEnv modified its argument: %q", tc.env)
			}
		})
	}
}

func TestEditConfig(t *testing.T) {
	base := func() ocispec.ImageConfig {
		return ocispec.ImageConfig{Entrypoint: []string{"/old"}, Cmd: []string{"old"}, Env: []string{"PATH=/bin", "A=1"},
			Labels: map[string]string{"l": "old"}, User: "root", WorkingDir: "/", StopSignal: "SIGINT"}
	}
	for _, tc := range []struct {
		name  string
		edits []ConfigEdit
		want  func(c *ocispec.ImageConfig)
		err   error
	}{
		{name: "none", want: func(*ocispec.ImageConfig) {}},
		{name: "entrypoint", edits: []ConfigEdit{WithEntrypoint("/bin/app", "-v")}, want: func(c *ocispec.ImageConfig) { c.Entrypoint = []string{"/bin/app", "-v"} }},
		{name: "entrypoint cleared", edits: []ConfigEdit{WithEntrypoint()}, want: func(c *ocispec.ImageConfig) { c.Entrypoint = nil }},
		{name: "cmd", edits: []ConfigEdit{WithCmd("serve")}, want: func(c *ocispec.ImageConfig) { c.Cmd = []string{"serve"} }},
		{name: "cmd cleared", edits: []ConfigEdit{WithCmd()}, want: func(c *ocispec.ImageConfig) { c.Cmd = nil }},
		{name: "env", edits: []ConfigEdit{WithEnv("A=2", "B=3")}, want: func(c *ocispec.ImageConfig) { c.Env = []string{"PATH=/bin", "A=2", "B=3"} }},
		{name: "env without =", edits: []ConfigEdit{WithEnv("A")}, err: errdef.ErrInvalidArgument},
		{name: "env with an empty key", edits: []ConfigEdit{WithEnv("=x")}, err: errdef.ErrInvalidArgument},
		{name: "label", edits: []ConfigEdit{WithLabel("l", "new"), WithLabel("m", "")}, want: func(c *ocispec.ImageConfig) { c.Labels = map[string]string{"l": "new", "m": ""} }},
		{name: "label with an empty key", edits: []ConfigEdit{WithLabel("", "x")}, err: errdef.ErrInvalidArgument},
		{name: "ports", edits: []ConfigEdit{WithExposedPort("80"), WithExposedPort("53/udp")}, want: func(c *ocispec.ImageConfig) {
			c.ExposedPorts = map[string]struct{}{"80/tcp": {}, "53/udp": {}}
		}},
		{name: "volume", edits: []ConfigEdit{WithVolume("/data")}, want: func(c *ocispec.ImageConfig) { c.Volumes = map[string]struct{}{"/data": {}} }},
		{name: "relative volume", edits: []ConfigEdit{WithVolume("data")}, err: errdef.ErrInvalidArgument},
		{name: "user, workdir, stop signal", edits: []ConfigEdit{WithUser("www:www"), WithWorkingDir("/srv"), WithStopSignal("SIGTERM")},
			want: func(c *ocispec.ImageConfig) { c.User, c.WorkingDir, c.StopSignal = "www:www", "/srv", "SIGTERM" }},
		{name: "in order", edits: []ConfigEdit{WithCmd("a"), WithCmd("b"), WithEnv("A=x"), WithEnv("A=y")},
			want: func(c *ocispec.ImageConfig) { c.Cmd, c.Env = []string{"b"}, []string{"PATH=/bin", "A=y"} }},
		{name: "stops at the first error", edits: []ConfigEdit{WithVolume("x"), WithUser("nobody")}, err: errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := base()
			err := EditConfig(&got, tc.edits...)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("EditConfig = %v, want %v", err, tc.err)
				}
				if got.User != "root" {
					t.Fatal("an edit after the failing one was applied")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := base()
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("config = %+v, want %+v", got, want)
			}
		})
	}
}
