package seccomp

import (
	"fmt"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// The SECCOMP_RET_ values of the actions (seccomp(2)); the low 16 bits of ERRNO and TRACE
// carry the errno.
const (
	RetKillProcess = 0x80000000
	RetKillThread  = 0x00000000
	RetTrap        = 0x00030000
	RetErrno       = 0x00050000
	RetTrace       = 0x7ff00000
	RetLog         = 0x7ffc0000
	RetAllow       = 0x7fff0000
)

// The AUDIT_ARCH_ values of struct seccomp_data's arch, and the bit x32 system call numbers
// carry.
const (
	AuditArchX8664 = 0xc000003e
	AuditArchI386  = 0x40000003
	X32SyscallBit  = 0x40000000
)

// maxInstructions is the kernel's BPF_MAXINSNS.
const maxInstructions = 4096

// A Filter is a compiled profile, ready to install.
type Filter struct {
	// Program is the classic BPF program over struct seccomp_data.
	Program []unix.SockFilter
	// Flags are the SECCOMP_FILTER_FLAG_ bits of the profile's flags.
	Flags uintptr
}

// Compile compiles profile for this host, or returns nil, nil for no profile. A profile it
// cannot honour is an error wrapping errdef.ErrUnsupported (a notify action or listenerPath,
// an unknown action, operator or flag, a host outside the x86 family), ErrInvalidArgument (an
// argument index over 5) or ErrTooLarge (over 4096 instructions).
func Compile(profile *specs.LinuxSeccomp) (*Filter, error) {
	if profile == nil {
		return nil, nil
	}
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp on %s: %w", runtime.GOARCH, errdef.ErrUnsupported)
	}
	prog, err := compileProgram(profile)
	if err != nil {
		return nil, err
	}
	flags, err := filterFlags(profile.Flags)
	if err != nil {
		return nil, err
	}
	return &Filter{Program: prog, Flags: flags}, nil
}

// compileProgram reads the profile as config-linux.md lists it — defaultAction and
// defaultErrnoRet, architectures, listenerPath, syscalls — and lays out the program.
func compileProgram(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp listenerPath %s: %w (no listener support)", s.ListenerPath, errdef.ErrUnsupported)
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	rules, err := syscallRules(s.Syscalls, def)
	if err != nil {
		return nil, err
	}
	return layout(architectures(s.Architectures), rules, def).resolve()
}

// action encodes an OCI action as a SECCOMP_RET_ value. ERRNO and TRACE carry errnoRet, EPERM
// when it is nil (as runc: defaultErrnoRet is the default action's only).
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	errno := uint(unix.EPERM)
	if errnoRet != nil {
		errno = *errnoRet
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return RetKillThread, nil
	case specs.ActKillProcess:
		return RetKillProcess, nil
	case specs.ActTrap:
		return RetTrap, nil
	case specs.ActErrno:
		return RetErrno | uint32(errno&0xffff), nil
	case specs.ActTrace:
		return RetTrace | uint32(errno&0xffff), nil
	case specs.ActAllow:
		return RetAllow, nil
	case specs.ActLog:
		return RetLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp action %s: %w (no listener support)", a, errdef.ErrUnsupported)
	}
	return 0, fmt.Errorf("seccomp action %q: %w", a, errdef.ErrUnsupported)
}

// abis is the set of ABIs the profile filters; the others are killed.
type abis map[specs.Arch]bool

// architectures keeps the x86 family's ABIs of the profile's list (another family never runs
// here: nothing to filter); an empty list is the native ABI only, as libseccomp's.
func architectures(list []specs.Arch) abis {
	a := abis{}
	for _, arch := range list {
		switch arch {
		case specs.ArchX86_64, specs.ArchX86, specs.ArchX32:
			a[arch] = true
		}
	}
	if len(list) == 0 {
		a[specs.ArchX86_64] = true
	}
	return a
}

// A rule is one system call of a profile entry: its number on each ABI that has it, the
// action and the argument conditions.
type rule struct {
	nr     map[specs.Arch]int
	action uint32
	args   []specs.LinuxSeccompArg
}

// syscallRules turns the profile's entries into rules, one per known name, in profile order.
// An entry that only repeats the default action is left out.
func syscallRules(entries []specs.LinuxSyscall, def uint32) ([]rule, error) {
	var rules []rule
	for _, sc := range entries {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act == def && len(sc.Args) == 0 {
			continue // what happens anyway
		}
		if err := checkArgs(sc); err != nil {
			return nil, err
		}
		for _, name := range sc.Names {
			if nr := numbers(name); len(nr) > 0 {
				rules = append(rules, rule{nr: nr, action: act, args: sc.Args})
			}
		}
	}
	return rules, nil
}

// checkArgs refuses argument conditions the program cannot express.
func checkArgs(sc specs.LinuxSyscall) error {
	for _, a := range sc.Args {
		if a.Index > 5 {
			return fmt.Errorf("seccomp rule for %v: argument index %d (0 to 5): %w", sc.Names, a.Index, errdef.ErrInvalidArgument)
		}
		switch a.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual,
			specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return fmt.Errorf("seccomp rule for %v: operator %q: %w", sc.Names, a.Op, errdef.ErrUnsupported)
		}
	}
	return nil
}

// numbers is the system call number of name on each ABI that has it (x32's without the x32
// bit); none for a name the tables do not know.
func numbers(name string) map[specs.Arch]int {
	nr := map[specs.Arch]int{}
	if n, ok := sysnumAMD64[name]; ok {
		nr[specs.ArchX86_64] = n
	}
	if n, ok := sysnum386[name]; ok {
		nr[specs.ArchX86] = n
	}
	if n, ok := sysnumX32(name); ok {
		nr[specs.ArchX32] = n
	}
	return nr
}

// filterFlags maps the profile's flags to seccomp(2) SECCOMP_FILTER_FLAG_ bits.
func filterFlags(flags []specs.LinuxSeccompFlag) (uintptr, error) {
	var f uintptr
	for _, fl := range flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			f |= 2 // SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f |= 4 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			f |= 32 // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return 0, fmt.Errorf("seccomp flag %q: %w", fl, errdef.ErrUnsupported)
		}
	}
	return f, nil
}
