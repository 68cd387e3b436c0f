package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/errdef"
)

// TestBuildProcess: runc's rule for exec's process — --process gives it whole; otherwise the
// container's process is the base and the arguments and flags change it.
func TestBuildProcess(t *testing.T) {
	base := &specs.Process{Args: []string{"sh"}, Env: []string{"PATH=/bin"}, Cwd: "/", Terminal: true,
		ConsoleSize: &specs.Box{Height: 1, Width: 2}, User: specs.User{UID: 5, GID: 6}, NoNewPrivileges: true,
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}}}
	procFile := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(procFile, []byte(`{"args":["/bin/true"],"cwd":"/tmp","user":{"uid":7}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badFile, []byte(`{"args":`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		flags []string
		args  []string
		check func(p *specs.Process) bool
		err   error
	}{
		{"the container's process with new args", nil, []string{"ls", "-l"}, func(p *specs.Process) bool {
			return slices.Equal(p.Args, []string{"ls", "-l"}) && !p.Terminal && p.ConsoleSize == nil && p.Cwd == "/" &&
				p.User.UID == 5 && p.NoNewPrivileges && slices.Equal(p.Env, []string{"PATH=/bin"})
		}, nil},
		{"env, cwd, tty", []string{"-e", "A=1", "--env", "B=2", "--cwd", "/srv", "-t"}, []string{"x"}, func(p *specs.Process) bool {
			return slices.Equal(p.Env, []string{"PATH=/bin", "A=1", "B=2"}) && p.Cwd == "/srv" && p.Terminal
		}, nil},
		{"user and groups", []string{"--user", "1000:100", "-g", "10", "--additional-gids", "11"}, []string{"x"}, func(p *specs.Process) bool {
			return p.User.UID == 1000 && p.User.GID == 100 && slices.Equal(p.User.AdditionalGids, []uint32{10, 11})
		}, nil},
		{"uid alone keeps the gid", []string{"-u", "1000"}, []string{"x"}, func(p *specs.Process) bool { return p.User.UID == 1000 && p.User.GID == 6 }, nil},
		{"capabilities", []string{"--cap", "net_admin", "-c", "CAP_SYS_TIME"}, []string{"x"}, func(p *specs.Process) bool {
			c := p.Capabilities
			return slices.Equal(c.Bounding, []string{"CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_TIME"}) &&
				slices.Equal(c.Effective, []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}) && slices.Equal(c.Permitted, c.Effective)
		}, nil},
		{"no-new-privs only when given", []string{"--no-new-privs=false"}, []string{"x"}, func(p *specs.Process) bool { return !p.NoNewPrivileges }, nil},
		{"flags after the command are its own", nil, []string{"ls", "-t"}, func(p *specs.Process) bool {
			return !p.Terminal && slices.Equal(p.Args, []string{"ls", "-t"})
		}, nil},
		{"process file", []string{"--process", procFile, "--cwd", "/ignored"}, nil, func(p *specs.Process) bool {
			return slices.Equal(p.Args, []string{"/bin/true"}) && p.Cwd == "/tmp" && p.User.UID == 7 && p.Env == nil
		}, nil},
		{"bad process file", []string{"-p", badFile}, nil, nil, errdef.ErrInvalidArgument},
		{"missing process file", []string{"-p", badFile + ".missing"}, nil, nil, os.ErrNotExist},
		{"no command", nil, nil, nil, errdef.ErrInvalidArgument},
		{"bad user", []string{"-u", "root"}, []string{"x"}, nil, errdef.ErrInvalidArgument},
		{"bad group", []string{"-u", "1:wheel"}, []string{"x"}, nil, errdef.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &execFlags{}
			cmd := &cobra.Command{Use: "exec"}
			f.add(cmd)
			if err := cmd.ParseFlags(append(tc.flags, tc.args...)); err != nil {
				t.Fatal(err)
			}
			p, err := buildProcess(cmd, f, base, cmd.Flags().Args())
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("buildProcess = %+v, %v; want %v", p, err, tc.err)
				}
				return
			}
			if err != nil || !tc.check(p) {
				t.Fatalf("buildProcess = %+v, %v", p, err)
			}
			if base.Terminal != true || len(base.Env) != 1 || len(base.Capabilities.Bounding) != 1 {
				t.Fatalf("the container's process was changed: %+v", base)
			}
		})
	}
}
