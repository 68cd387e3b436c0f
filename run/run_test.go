package run

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1", "B"}, []string{"A=2", "C=3", "B=x"})
	want := []string{"PATH=/bin", "A=2", "B=x", "C=3"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mergeEnv = %q, want %q", got, want)
	}
}

func TestAdjustConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      specs.Spec
		opts    Options
		args    []string
		tty     bool
		host    string
		wantErr error
	}{
		{"image command kept", specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}}}, Options{ID: "c1"}, []string{"/bin/sh"}, false, "c1", nil},
		{"command replaced, tty", specs.Spec{Hostname: "h", Process: &specs.Process{Args: []string{"/bin/sh"}}}, Options{ID: "c1", Args: []string{"echo", "hi"}, Tty: true}, []string{"echo", "hi"}, true, "h", nil},
		{"no command at all", specs.Spec{Process: &specs.Process{}}, Options{ID: "c1"}, nil, false, "", errdef.ErrInvalidArgument},
		{"no process", specs.Spec{}, Options{ID: "c1"}, nil, false, "", errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.json")
			b, _ := json.Marshal(tc.in)
			os.WriteFile(p, b, 0o600)
			err := adjustConfig(p, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("adjustConfig = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s specs.Spec
			b, _ = os.ReadFile(p)
			json.Unmarshal(b, &s)
			if !reflect.DeepEqual(s.Process.Args, tc.args) || s.Process.Terminal != tc.tty || s.Hostname != tc.host {
				t.Fatalf("config: args %q terminal %v hostname %q", s.Process.Args, s.Process.Terminal, s.Hostname)
			}
		})
	}
}

func TestFindRuntime(t *testing.T) {
	if _, err := findRuntime("/nonexistent/runtime"); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("findRuntime(missing) = %v, want ErrNotFound", err)
	}
	if p, err := findRuntime("true"); err != nil || filepath.Base(p) != "true" {
		t.Fatalf("findRuntime(true) = %q, %v", p, err)
	}
}
