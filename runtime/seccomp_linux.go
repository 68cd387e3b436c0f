package runtime

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Seccomp (runtime-spec config-linux.md#seccomp): the config's profile is compiled to one
// classic BPF program, checked linearly: the architecture first (x86_64 and i386, with the x32
// ABI of x86_64, each with its own numbers; an architecture the profile does not list kills the process, as libseccomp's
// bad-arch action), then each rule in profile order (the first whose system call and argument
// conditions match gives the action), then the default action. System call names come from
// golang.org/x/sys (seccomp_sysnum.go); a name this table does not know is skipped, as runc
// skips names libseccomp does not know. The filter is installed on the thread that execs: just
// before execve when noNewPrivileges is set, else before the capabilities are dropped (a
// filter needs CAP_SYS_ADMIN or no_new_privs), as runc does.

const (
	auditArchX8664 = 0xc000003e
	auditArchI386  = 0x40000003
	x32SyscallBit  = 0x40000000

	seccompRetKillProcess = 0x80000000
	seccompRetKillThread  = 0x00000000
	seccompRetTrap        = 0x00030000
	seccompRetErrno       = 0x00050000
	seccompRetTrace       = 0x7ff00000
	seccompRetLog         = 0x7ffc0000
	seccompRetAllow       = 0x7fff0000

	seccompSetModeFilter = 1
	bpfMaxInsns          = 4096

	// offsets in struct seccomp_data
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// seccompAction encodes an OCI action as a SECCOMP_RET_ value. ERRNO and TRACE carry errnoRet,
// EPERM when it is nil (as runc: defaultErrnoRet is the default action's only).
func seccompAction(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	errno := uint(unix.EPERM)
	if errnoRet != nil {
		errno = *errnoRet
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return seccompRetKillThread, nil
	case specs.ActKillProcess:
		return seccompRetKillProcess, nil
	case specs.ActTrap:
		return seccompRetTrap, nil
	case specs.ActErrno:
		return seccompRetErrno | uint32(errno&0xffff), nil
	case specs.ActTrace:
		return seccompRetTrace | uint32(errno&0xffff), nil
	case specs.ActAllow:
		return seccompRetAllow, nil
	case specs.ActLog:
		return seccompRetLog, nil
	case specs.ActNotify:
		return 0, fmt.Errorf("seccomp action %s: %w (no listener support)", a, errUnsupported)
	}
	return 0, fmt.Errorf("seccomp action %q: %w", a, errUnsupported)
}

var errUnsupported = errors.New("not supported")

// bpfProg assembles a program with forward jumps to labels.
type bpfProg struct {
	ins    []unix.SockFilter
	labels map[int]int // label → instruction index
	fixups []bpfFixup  // conditional jumps to resolve
	next   int         // next label number
}

type bpfFixup struct {
	at     int
	jt, jf int // labels, or -1 for "the next instruction"
	ja     bool
}

func (p *bpfProg) label() int { p.next++; return p.next }

func (p *bpfProg) mark(l int) {
	if p.labels == nil {
		p.labels = map[int]int{}
	}
	p.labels[l] = len(p.ins)
}

func (p *bpfProg) stmt(code uint16, k uint32) {
	p.ins = append(p.ins, unix.SockFilter{Code: code, K: k})
}

// jump emits a conditional jump on the accumulator against k to labels jt and jf (-1: fall
// through to the next instruction).
func (p *bpfProg) jump(op uint16, k uint32, jt, jf int) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), jt: jt, jf: jf})
	p.stmt(unix.BPF_JMP|op|unix.BPF_K, k)
}

// goTo emits an unconditional jump (32-bit offset) to label l.
func (p *bpfProg) goTo(l int) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), jt: l, ja: true})
	p.stmt(unix.BPF_JMP|unix.BPF_JA, 0)
}

func (p *bpfProg) load(off uint32) { p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }
func (p *bpfProg) ret(v uint32)    { p.stmt(unix.BPF_RET|unix.BPF_K, v) }

func (p *bpfProg) resolve() ([]unix.SockFilter, error) {
	rel := func(at, l int) (int, error) {
		if l < 0 {
			return 0, nil
		}
		to, ok := p.labels[l]
		if !ok || to <= at {
			return 0, fmt.Errorf("seccomp: internal error: jump to an unplaced label")
		}
		return to - at - 1, nil
	}
	for _, f := range p.fixups {
		if f.ja {
			d, err := rel(f.at, f.jt)
			if err != nil {
				return nil, err
			}
			p.ins[f.at].K = uint32(d)
			continue
		}
		jt, err := rel(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		jf, err := rel(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("seccomp: a rule's argument conditions are too long for one filter")
		}
		p.ins[f.at].Jt, p.ins[f.at].Jf = uint8(jt), uint8(jf)
	}
	if len(p.ins) > bpfMaxInsns {
		return nil, fmt.Errorf("seccomp: the profile compiles to %d instructions (at most %d)", len(p.ins), bpfMaxInsns)
	}
	return p.ins, nil
}

// compileSeccomp turns a profile into a BPF program for the x86 family.
func compileSeccomp(s *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("seccomp on %s: %w", runtime.GOARCH, errUnsupported)
	}
	if s.ListenerPath != "" {
		return nil, fmt.Errorf("seccomp listenerPath: %w", errUnsupported)
	}
	def, err := seccompAction(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	archs := map[specs.Arch]bool{}
	for _, a := range s.Architectures {
		switch a {
		case specs.ArchX86_64, specs.ArchX86, specs.ArchX32:
			archs[a] = true
		default:
			// another family never runs here: nothing to filter
		}
	}
	if len(s.Architectures) == 0 { // the native architecture only, as libseccomp
		archs[specs.ArchX86_64] = true
	}
	type rule struct {
		nr     map[specs.Arch]int
		action uint32
		args   []specs.LinuxSeccompArg
	}
	var rules []rule
	for _, sc := range s.Syscalls {
		act, err := seccompAction(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act == def && len(sc.Args) == 0 {
			continue // what happens anyway
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp rule for %v: argument index %d (0 to 5)", sc.Names, a.Index)
			}
			switch a.Op {
			case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
			default:
				return nil, fmt.Errorf("seccomp rule for %v: operator %q: %w", sc.Names, a.Op, errUnsupported)
			}
		}
		for _, name := range sc.Names {
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
			if len(nr) > 0 {
				rules = append(rules, rule{nr: nr, action: act, args: sc.Args})
			}
		}
	}

	p := &bpfProg{}
	not64, bad := p.label(), p.label()
	p.load(offArch)
	is64 := p.label()
	p.jump(unix.BPF_JEQ, auditArchX8664, is64, -1) // sections are long: unconditional jumps past them
	p.goTo(not64)
	p.mark(is64)
	if archs[specs.ArchX86_64] || archs[specs.ArchX32] {
		p.load(offNr)
		native, isX32 := p.label(), p.label()
		p.jump(unix.BPF_JSET, x32SyscallBit, isX32, -1) // sections are long: jump past with JA
		p.goTo(native)
		p.mark(isX32)
		if archs[specs.ArchX32] {
			// x32: 32-bit arguments, as libseccomp compares them
			for _, r := range rules {
				if n, ok := r.nr[specs.ArchX32]; ok {
					emitRule(p, n|x32SyscallBit, r.args, r.action, true)
				}
			}
			p.ret(def)
		} else {
			p.ret(seccompRetKillProcess)
		}
		p.mark(native)
		if archs[specs.ArchX86_64] {
			for _, r := range rules {
				if n, ok := r.nr[specs.ArchX86_64]; ok {
					emitRule(p, n, r.args, r.action, false)
				}
			}
			p.ret(def)
		} else {
			p.ret(seccompRetKillProcess)
		}
	} else {
		p.goTo(bad)
	}
	p.mark(not64)
	if archs[specs.ArchX86] {
		other, is32 := p.label(), p.label()
		p.jump(unix.BPF_JEQ, auditArchI386, is32, -1)
		p.goTo(other)
		p.mark(is32)
		p.load(offNr)
		for _, r := range rules {
			if n, ok := r.nr[specs.ArchX86]; ok {
				emitRule(p, n, r.args, r.action, true)
			}
		}
		p.ret(def)
		p.mark(other)
	}
	p.mark(bad)
	p.ret(seccompRetKillProcess)
	return p.resolve()
}

// x32Numbers are the x32 system calls numbered apart from x86_64's (512 to 547, without the
// x32 bit), and amd64Only the x86_64 calls x32 does not have at all (syscall_64.tbl, "64" ABI
// with no "x32" twin); every other x86_64 call has the same number on x32.
var (
	x32Numbers = map[string]int{
		"rt_sigaction": 512, "rt_sigreturn": 513, "ioctl": 514, "readv": 515, "writev": 516,
		"recvfrom": 517, "sendmsg": 518, "recvmsg": 519, "execve": 520, "ptrace": 521,
		"rt_sigpending": 522, "rt_sigtimedwait": 523, "rt_sigqueueinfo": 524, "sigaltstack": 525,
		"timer_create": 526, "mq_notify": 527, "kexec_load": 528, "waitid": 529,
		"set_robust_list": 530, "get_robust_list": 531, "vmsplice": 532, "move_pages": 533,
		"preadv": 534, "pwritev": 535, "rt_tgsigqueueinfo": 536, "recvmmsg": 537, "sendmmsg": 538,
		"process_vm_readv": 539, "process_vm_writev": 540, "setsockopt": 541, "getsockopt": 542,
		"io_setup": 543, "io_submit": 544, "execveat": 545, "preadv2": 546, "pwritev2": 547,
	}
	amd64Only = map[string]bool{
		"uselib": true, "_sysctl": true, "create_module": true, "get_kernel_syms": true,
		"query_module": true, "nfsservctl": true, "set_thread_area": true, "get_thread_area": true,
		"epoll_ctl_old": true, "epoll_wait_old": true, "vserver": true, "uretprobe": true,
	}
)

// sysnumX32 is the x32 number of a system call, without the x32 bit.
func sysnumX32(name string) (int, bool) {
	if n, ok := x32Numbers[name]; ok {
		return n, true
	}
	if amd64Only[name] {
		return 0, false
	}
	n, ok := sysnumAMD64[name]
	return n, ok
}

// emitRule emits: if nr matches and every argument condition holds, return action. The
// accumulator holds the system call number before and after.
func emitRule(p *bpfProg, nr int, args []specs.LinuxSeccompArg, action uint32, arch32 bool) {
	skip := p.label()
	p.jump(unix.BPF_JEQ, uint32(nr), -1, skip)
	if len(args) == 0 {
		p.ret(action)
		p.mark(skip)
		return
	}
	fail := p.label()
	for _, a := range args {
		emitArg(p, a, fail, arch32)
	}
	p.ret(action)
	p.mark(fail)
	p.load(offNr)
	p.mark(skip)
}

// emitArg falls through when the condition holds and jumps to fail when not. Arguments are
// 64-bit (two words, low first on little-endian x86); on i386 only the low word exists.
func emitArg(p *bpfProg, a specs.LinuxSeccompArg, fail int, arch32 bool) {
	lo := offArgs + 8*uint32(a.Index)
	hi := lo + 4
	v, v2 := a.Value, a.ValueTwo
	vlo, vhi := uint32(v), uint32(v>>32)
	pass := p.label()
	if arch32 {
		vhi = 0
	}
	cmp := func(word uint32, k uint32, op uint16, jt, jf int) {
		p.load(word)
		p.jump(op, k, jt, jf)
	}
	switch a.Op {
	case specs.OpEqualTo:
		if !arch32 {
			cmp(hi, vhi, unix.BPF_JEQ, -1, fail)
		}
		cmp(lo, vlo, unix.BPF_JEQ, pass, fail)
	case specs.OpNotEqual:
		if !arch32 {
			cmp(hi, vhi, unix.BPF_JEQ, -1, pass)
		}
		cmp(lo, vlo, unix.BPF_JEQ, fail, pass)
	case specs.OpGreaterThan, specs.OpGreaterEqual:
		if !arch32 {
			p.load(hi)
			p.jump(unix.BPF_JGT, vhi, pass, -1)
			p.jump(unix.BPF_JEQ, vhi, -1, fail)
		}
		op := uint16(unix.BPF_JGT)
		if a.Op == specs.OpGreaterEqual {
			op = unix.BPF_JGE
		}
		cmp(lo, vlo, op, pass, fail)
	case specs.OpLessThan, specs.OpLessEqual:
		if !arch32 {
			p.load(hi)
			p.jump(unix.BPF_JGT, vhi, fail, -1)
			p.jump(unix.BPF_JEQ, vhi, -1, pass)
		}
		op := uint16(unix.BPF_JGE) // lo < v  ⇔  !(lo >= v)
		if a.Op == specs.OpLessEqual {
			op = unix.BPF_JGT
		}
		cmp(lo, vlo, op, fail, pass)
	case specs.OpMaskedEqual: // (arg & value) == valueTwo
		v2lo, v2hi := uint32(v2), uint32(v2>>32)
		if !arch32 {
			p.load(hi)
			p.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vhi)
			p.jump(unix.BPF_JEQ, v2hi, -1, fail)
		}
		p.load(lo)
		p.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, vlo)
		p.jump(unix.BPF_JEQ, v2lo, pass, fail)
	}
	p.mark(pass)
}

// seccompFlags maps the profile's flags to seccomp(2) SECCOMP_FILTER_FLAG_ bits.
func seccompFlags(s *specs.LinuxSeccomp) (uintptr, error) {
	var f uintptr
	for _, fl := range s.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			f |= 2 // SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f |= 4 // SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			f |= 32 // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		default:
			return 0, fmt.Errorf("seccomp flag %q: %w", fl, errUnsupported)
		}
	}
	return f, nil
}

// compiledSeccomp is a profile's filter, ready to install.
type compiledSeccomp struct {
	filter []unix.SockFilter
	flags  uintptr
}

// loadSeccompProfile compiles profile, or returns nil for none.
func loadSeccompProfile(profile *specs.LinuxSeccomp) (*compiledSeccomp, error) {
	if profile == nil {
		return nil, nil
	}
	filter, err := compileSeccomp(profile)
	if err != nil {
		return nil, err
	}
	flags, err := seccompFlags(profile)
	if err != nil {
		return nil, err
	}
	return &compiledSeccomp{filter: filter, flags: flags}, nil
}

func (c *compiledSeccomp) install() error { return installSeccomp(c.filter, c.flags) }

// installSeccomp loads the filter on the calling thread (the one that will exec).
func installSeccomp(filter []unix.SockFilter, flags uintptr) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, seccompSetModeFilter, flags, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return fmt.Errorf("load seccomp filter: %w", e)
	}
	return nil
}
