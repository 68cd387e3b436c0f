package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const seccompChildEnv = "WHARF_SECCOMP_CHILD"

// The child installs the profile given in the environment (with no_new_privs) and makes the
// calls listed there: getpriority(PRIO_PROCESS, who) for each who. It prints one errno per call.
func TestSeccompChild(t *testing.T) {
	env := os.Getenv(seccompChildEnv)
	if env == "" {
		t.Skip("helper for TestSeccompFilters")
	}
	var c struct {
		Profile specs.LinuxSeccomp
		Who     []uint64
		X32     []uintptr // x32 system call numbers to make (without the x32 bit), first
	}
	if err := json.Unmarshal([]byte(env), &c); err != nil {
		t.Fatal(err)
	}
	goruntime.LockOSThread()
	filter, err := compileSeccomp(&c.Profile)
	if err != nil {
		fmt.Println("compile:", err)
		return
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := installSeccomp(filter, 0); err != nil {
		t.Fatal(err)
	}
	var out []string
	class := func(e unix.Errno) string {
		switch e {
		case unix.ENOTBLK: // the rule's answer
			return "m"
		case unix.EPERM:
			return "EPERM"
		default: // the kernel's own (0, ESRCH for no such process, ENOSYS for x32 here)
			return "-"
		}
	}
	for _, nr := range c.X32 {
		_, _, e := unix.RawSyscall(nr|x32SyscallBit, 0, 0, 0)
		out = append(out, class(e))
	}
	for _, who := range c.Who {
		_, _, e := unix.RawSyscall(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, uintptr(who), 0)
		out = append(out, class(e))
	}
	fmt.Println("RESULT " + strings.Join(out, ","))
}

func runSeccompChild(t *testing.T, p specs.LinuxSeccomp, who []uint64, x32 []uintptr) (string, error) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"Profile": p, "Who": who, "X32": x32})
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccompChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), seccompChildEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(l, "RESULT "); ok {
			return r, err
		}
	}
	return string(out), err
}

// Each operator, on a 64-bit argument, in a rule that answers ENOTBLK when it matches ("m");
// "-" is getpriority's own answer.
func TestSeccompFilters(t *testing.T) {
	if os.Getenv(seccompChildEnv) != "" {
		t.Skip()
	}
	me := uint64(os.Getpid())
	big := uint64(1)<<40 | me // same low word as me, another high word
	enotblk := uint(15)
	rule := func(op specs.LinuxSeccompOperator, v, v2 uint64) specs.LinuxSeccomp {
		return specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority", "not_a_syscall"}, Action: specs.ActErrno, ErrnoRet: &enotblk,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: v, ValueTwo: v2, Op: op}}}}}
	}
	who := []uint64{me - 1, me, me + 1, big}
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
		want string // errno per who
	}{
		{"eq", rule(specs.OpEqualTo, me, 0), "-,m,-,-"},
		{"ne", rule(specs.OpNotEqual, me, 0), "m,-,m,m"},
		{"lt", rule(specs.OpLessThan, me, 0), "m,-,-,-"},
		{"le", rule(specs.OpLessEqual, me, 0), "m,m,-,-"},
		{"gt", rule(specs.OpGreaterThan, me, 0), "-,-,m,m"},
		{"ge", rule(specs.OpGreaterEqual, me, 0), "-,m,m,m"},
		{"masked eq: high word", rule(specs.OpMaskedEqual, 0xffffffff00000000, 1<<40), "-,-,-,m"},
		{"no rule matches", specs.LinuxSeccomp{DefaultAction: specs.ActAllow}, "-,-,-,-"},
		{"a rule's errno defaults to EPERM, not to defaultErrnoRet", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: &enotblk,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpriority"}, Action: specs.ActErrno}}}, "EPERM,EPERM,EPERM,EPERM"},
		{"defaultErrnoRet is the default action's", specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: &enotblk,
			Syscalls: []specs.LinuxSyscall{{Names: allBut("getpriority"), Action: specs.ActAllow}}}, "m,m,m,m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runSeccompChild(t, tc.p, who, nil)
			if err != nil || got != tc.want {
				t.Fatalf("errnos %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("x32 calls are killed unless x32 is listed", func(t *testing.T) {
		p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}}
		_, err := runSeccompChild(t, p, nil, []uintptr{unix.SYS_GETPID})
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
			t.Fatalf("x32 call under an x86_64-only filter: %v, want SIGSYS", err)
		}
		p.Architectures = append(p.Architectures, specs.ArchX32)
		if _, err := runSeccompChild(t, p, nil, []uintptr{unix.SYS_GETPID}); err != nil {
			t.Fatalf("x32 call with x32 listed: %v", err)
		}
	})
	t.Run("x32 rules use x32 numbers", func(t *testing.T) {
		// getpid is 39 on both; x32's rt_sigaction is 512 (13 is x86_64's only); set_thread_area
		// (x86_64 205) does not exist on x32
		p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", "rt_sigaction", "set_thread_area"}, Action: specs.ActErrno, ErrnoRet: &enotblk}}}
		got, err := runSeccompChild(t, p, nil, []uintptr{unix.SYS_GETPID, 512, unix.SYS_RT_SIGACTION, unix.SYS_SET_THREAD_AREA})
		if err != nil || got != "m,m,-,-" {
			t.Fatalf("x32 getpid, rt_sigaction (512), 13, 205: %q (%v), want m,m,-,-", got, err)
		}
		// and an x32 argument is compared on its low 32 bits, as libseccomp does
		p.Syscalls = []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: &enotblk,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 40, Op: specs.OpEqualTo}}}}
		if got, err := runSeccompChild(t, p, nil, []uintptr{unix.SYS_GETPID}); err != nil || got != "m" {
			t.Fatalf("x32 getpid(0) against arg0 == 1<<40: %q (%v), want m (high word ignored)", got, err)
		}
	})
}

// allBut lists every known x86_64 system call name except skip.
func allBut(skip string) []string {
	var names []string
	for n := range sysnumAMD64 {
		if n != skip {
			names = append(names, n)
		}
	}
	return names
}

func TestSeccompCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    specs.LinuxSeccomp
		want string
	}{
		{"notify", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "not supported"},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/run/x"}, "listenerPath"},
		{"unknown action", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, "SCMP_ACT_NOPE"},
		{"bad index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "argument index 6"},
		{"bad operator", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_NOPE"}}}}}, "SCMP_CMP_NOPE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileSeccomp(&tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("compile: %v, want an error about %q", err, tc.want)
			}
		})
	}
	// A profile as big as podman's (every known name allowed, default errno) fits.
	var names []string
	for n := range sysnumAMD64 {
		names = append(names, n)
	}
	p := specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}}
	f, err := compileSeccomp(&p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d names compile to %d instructions", len(names), len(f))
}
