package seccomp

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

// The kernel's side: a few filters installed for real, in a child process (no_new_privs: no
// root needed), to show the kernel accepts what Compile emits and answers as the VM does.

const childEnv = "WHARF_SECCOMP_CHILD"

// TestInstallChild is the child: it installs the profile given in the environment and makes
// the calls listed there — the x32 numbers first (with the x32 bit), then
// getpriority(PRIO_PROCESS, who) for each who — printing one class of answer per call.
func TestInstallChild(t *testing.T) {
	env := os.Getenv(childEnv)
	if env == "" {
		t.Skip("helper for TestInstall")
	}
	var c struct {
		Profile specs.LinuxSeccomp
		Who     []uint64
		X32     []uintptr
	}
	if err := json.Unmarshal([]byte(env), &c); err != nil {
		t.Fatal(err)
	}
	goruntime.LockOSThread()
	f, err := Compile(&c.Profile)
	if err != nil {
		fmt.Println("compile:", err)
		return
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Install(); err != nil {
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
		_, _, e := unix.RawSyscall(nr|X32SyscallBit, 0, 0, 0)
		out = append(out, class(e))
	}
	for _, who := range c.Who {
		_, _, e := unix.RawSyscall(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, uintptr(who), 0)
		out = append(out, class(e))
	}
	fmt.Println("RESULT " + strings.Join(out, ","))
}

func runChild(t *testing.T, p specs.LinuxSeccomp, who []uint64, x32 []uintptr) (string, error) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"Profile": p, "Who": who, "X32": x32})
	cmd := exec.Command(os.Args[0], "-test.run=^TestInstallChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if r, ok := strings.CutPrefix(l, "RESULT "); ok {
			return r, err
		}
	}
	return string(out), err
}

// TestInstall: each operator on a 64-bit argument, in a rule that answers ENOTBLK when it
// matches ("m"; "-" is getpriority's own answer), and the x32 cases, under the kernel.
func TestInstall(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip()
	}
	me := uint64(os.Getpid())
	big := uint64(1)<<40 | me // same low word as me, another high word
	enotblk := uint(unix.ENOTBLK)
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
			got, err := runChild(t, tc.p, who, nil)
			if err != nil || got != tc.want {
				t.Fatalf("errnos %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("x32 calls are killed unless x32 is listed", func(t *testing.T) {
		p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64}}
		_, err := runChild(t, p, nil, []uintptr{unix.SYS_GETPID})
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGSYS {
			t.Fatalf("x32 call under an x86_64-only filter: %v, want SIGSYS", err)
		}
		p.Architectures = append(p.Architectures, specs.ArchX32)
		if _, err := runChild(t, p, nil, []uintptr{unix.SYS_GETPID}); err != nil {
			t.Fatalf("x32 call with x32 listed: %v", err)
		}
	})
	t.Run("x32 rules use x32 numbers", func(t *testing.T) {
		p := specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", "rt_sigaction", "set_thread_area"}, Action: specs.ActErrno, ErrnoRet: &enotblk}}}
		got, err := runChild(t, p, nil, []uintptr{unix.SYS_GETPID, 512, unix.SYS_RT_SIGACTION, unix.SYS_SET_THREAD_AREA})
		if err != nil || got != "m,m,-,-" {
			t.Fatalf("x32 getpid, rt_sigaction (512), 13, 205: %q (%v), want m,m,-,-", got, err)
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
