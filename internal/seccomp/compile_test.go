package seccomp

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

// TestRefused: a profile the compiler cannot honour is an error, never a weaker filter.
func TestRefused(t *testing.T) {
	read := func(args ...specs.LinuxSeccompArg) []specs.LinuxSyscall {
		return []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: args}}
	}
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
		is   error
		want string
	}{
		{"notify default", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, errdef.ErrUnsupported, "SCMP_ACT_NOTIFY"},
		{"notify rule", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActNotify}}}, errdef.ErrUnsupported, "no listener support"},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x"}, errdef.ErrUnsupported, "listenerPath"},
		{"unknown default action", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, errdef.ErrUnsupported, "SCMP_ACT_NOPE"},
		{"no default action", specs.LinuxSeccomp{}, errdef.ErrUnsupported, `seccomp action ""`},
		{"unknown rule action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: "SCMP_ACT_MAYBE"}}}, errdef.ErrUnsupported, "SCMP_ACT_MAYBE"},
		{"argument index 6", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: read(specs.LinuxSeccompArg{Index: 6, Op: specs.OpEqualTo})},
			errdef.ErrInvalidArgument, "argument index 6"},
		{"unknown operator", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: read(specs.LinuxSeccompArg{Index: 0, Op: "SCMP_CMP_NOPE"})},
			errdef.ErrUnsupported, "SCMP_CMP_NOPE"},
		{"unknown flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"}},
			errdef.ErrUnsupported, "SECCOMP_FILTER_FLAG_NOPE"},
		{"over 4096 instructions", tooBig(), errdef.ErrTooLarge, "at most 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Compile(&tc.p)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Compile = %v, %v; want an error about %q wrapping %v", f, err, tc.want, tc.is)
			}
		})
	}
}

// tooBig is a profile of 700 rules with a condition each: about 5 instructions per rule on
// each of three ABIs.
func tooBig() specs.LinuxSeccomp {
	p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: allABIs}
	for i := range 700 {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"ioctl"}, Action: specs.ActErrno,
			Args: []specs.LinuxSeccompArg{{Index: 1, Value: uint64(i), Op: specs.OpEqualTo}}})
	}
	return p
}

func TestNoProfile(t *testing.T) {
	if f, err := Compile(nil); f != nil || err != nil {
		t.Fatalf("Compile(nil) = %v, %v; want nil, nil", f, err)
	}
}

func TestFlags(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
		specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}})
	if err != nil || f.Flags != 2|4|32 {
		t.Fatalf("Compile = %+v, %v; want flags 0x26", f, err)
	}
}

// TestLargeProfile: a profile as big as podman's (every known name allowed, default errno, on
// all three ABIs) fits in one filter and allows what it lists.
func TestLargeProfile(t *testing.T) {
	var names []string
	for n := range sysnumAMD64 {
		names = append(names, n)
	}
	p := specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: allABIs,
		Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
	f, err := Compile(&p)
	if err != nil {
		t.Fatal(err)
	}
	v := vm(t, f.Program)
	for _, c := range []call{x8664("read"), x8664("rseq_slice_yield"), x32("execve"), i386("read")} {
		if got := verdict(t, v, c); got != RetAllow {
			t.Errorf("nr %#x arch %#x: %#x, want allow", c.nr, c.arch, got)
		}
	}
	if got := verdict(t, v, call{nr: 1000, arch: AuditArchX8664}); got != RetErrno|1 {
		t.Errorf("an unknown number: %#x, want the default", got)
	}
	t.Logf("%d names compile to %d instructions", len(names), len(f.Program))
}

// TestTables: the generated tables and the x32 derivation agree with the kernel's on a few
// well-known numbers.
func TestTables(t *testing.T) {
	for _, tc := range []struct {
		name             string
		amd64, i386, x32 int
		noI386, noX32    bool
	}{
		{name: "read", amd64: 0, i386: 3, x32: 0},
		{name: "getpid", amd64: 39, i386: 20, x32: 39},
		{name: "execve", amd64: 59, i386: 11, x32: 520},
		{name: "pwritev2", amd64: 328, i386: 379, x32: 547},
		{name: "set_thread_area", amd64: 205, i386: 243, noX32: true},
		{name: "socketcall", amd64: -1, i386: 102, noX32: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nr := numbers(tc.name)
			check := func(abi specs.Arch, want int, absent bool) {
				got, ok := nr[abi]
				if absent || want < 0 {
					if ok {
						t.Errorf("%s on %s: %d, want none", tc.name, abi, got)
					}
					return
				}
				if !ok || got != want {
					t.Errorf("%s on %s: %d (%v), want %d", tc.name, abi, got, ok, want)
				}
			}
			check(specs.ArchX86_64, tc.amd64, false)
			check(specs.ArchX86, tc.i386, tc.noI386)
			check(specs.ArchX32, tc.x32, tc.noX32 || tc.amd64 < 0)
		})
	}
	if len(x32Numbers) != 36 {
		t.Errorf("%d x32 numbers apart, want 36 (512 to 547)", len(x32Numbers))
	}
	for name, n := range x32Numbers {
		if n < 512 || n > 547 {
			t.Errorf("x32 %s = %d, not in 512..547", name, n)
		}
		if _, ok := sysnumAMD64[name]; !ok {
			t.Errorf("x32 %s is not an x86_64 call", name)
		}
	}
}
