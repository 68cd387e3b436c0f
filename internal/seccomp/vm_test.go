package seccomp

import (
	"encoding/binary"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// A call is one struct seccomp_data: what the kernel hands the filter at a system call.
type call struct {
	nr   uint32 // with the x32 bit for an x32 call
	arch uint32
	ip   uint64
	args [6]uint64
}

// bytes lays the call out as the filter reads it: every 32-bit word at its offset of struct
// seccomp_data. The kernel loads words in host order (little-endian x86: args[i]'s low word
// first); x/net/bpf's VM loads them big-endian, so each word is stored big-endian for the VM
// to see the value the kernel would.
func (c call) bytes() []byte {
	b := make([]byte, 64)
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
	put(offNr, c.nr)
	put(offArch, c.arch)
	put(8, uint32(c.ip))
	put(12, uint32(c.ip>>32))
	for i, a := range c.args {
		put(offArgs+8*i, uint32(a))
		put(offArgs+8*i+4, uint32(a>>32))
	}
	return b
}

// vm loads a compiled program into x/net/bpf's interpreter.
func vm(t *testing.T, prog []unix.SockFilter) *bpf.VM {
	t.Helper()
	raw := make([]bpf.Instruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	v, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatalf("load the program in the BPF VM: %v", err)
	}
	return v
}

// verdict runs the program on c and returns the SECCOMP_RET_ value it answers.
func verdict(t *testing.T, v *bpf.VM, c call) uint32 {
	t.Helper()
	r, err := v.Run(c.bytes())
	if err != nil {
		t.Fatalf("run the program: %v", err)
	}
	return uint32(r)
}

func compile(t *testing.T, p specs.LinuxSeccomp) *bpf.VM {
	t.Helper()
	f, err := Compile(&p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return vm(t, f.Program)
}

func x8664(name string, args ...uint64) call {
	c := call{nr: uint32(sysnumAMD64[name]), arch: AuditArchX8664, ip: 0x7f00_1234_5678}
	copy(c.args[:], args)
	return c
}

func i386(name string, args ...uint64) call {
	c := call{nr: uint32(sysnum386[name]), arch: AuditArchI386, ip: 0x0804_8000}
	copy(c.args[:], args)
	return c
}

func x32(name string, args ...uint64) call {
	n, _ := sysnumX32(name)
	c := call{nr: uint32(n) | X32SyscallBit, arch: AuditArchX8664, ip: 0x40_0000}
	copy(c.args[:], args)
	return c
}

func errnoRet(n uint) *uint { return &n }

var allABIs = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}

// TestActions: each action of a rule, and of the default, is the value the filter returns.
func TestActions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		act      specs.LinuxSeccompAction
		errnoRet *uint
		want     uint32
	}{
		{"allow", specs.ActAllow, nil, RetAllow},
		{"errno defaults to EPERM", specs.ActErrno, nil, RetErrno | uint32(unix.EPERM)},
		{"errno with errnoRet", specs.ActErrno, errnoRet(uint(unix.ENOTBLK)), RetErrno | uint32(unix.ENOTBLK)},
		{"kill is kill-thread", specs.ActKill, nil, RetKillThread},
		{"kill thread", specs.ActKillThread, nil, RetKillThread},
		{"kill process", specs.ActKillProcess, nil, RetKillProcess},
		{"trap", specs.ActTrap, nil, RetTrap},
		{"trace carries errnoRet", specs.ActTrace, errnoRet(7), RetTrace | 7},
		{"trace defaults to EPERM", specs.ActTrace, nil, RetTrace | uint32(unix.EPERM)},
		{"log", specs.ActLog, nil, RetLog},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := specs.ActAllow
			if tc.act == specs.ActAllow {
				other = specs.ActLog
			}
			v := compile(t, specs.LinuxSeccomp{DefaultAction: other, Architectures: allABIs,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: tc.act, ErrnoRet: tc.errnoRet}}})
			for _, c := range []call{x8664("getpid"), i386("getpid"), x32("getpid")} {
				if got := verdict(t, v, c); got != tc.want {
					t.Errorf("getpid (arch %#x, nr %#x): %#x, want %#x", c.arch, c.nr, got, tc.want)
				}
			}
			// the default action is the same encoding
			d := compile(t, specs.LinuxSeccomp{DefaultAction: tc.act, DefaultErrnoRet: tc.errnoRet})
			if got := verdict(t, d, x8664("getppid")); got != tc.want {
				t.Errorf("default action: %#x, want %#x", got, tc.want)
			}
		})
	}
}

// TestRuleOrder: the first matching rule answers, unknown names are skipped, a rule that
// repeats the default changes nothing, and defaultErrnoRet belongs to the default action.
func TestRuleOrder(t *testing.T) {
	v := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(38),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"not_a_syscall", "read"}, Action: specs.ActAllow},
			{Names: []string{"read", "write"}, Action: specs.ActKillProcess},
			{Names: []string{"close"}, Action: specs.ActErrno, ErrnoRet: errnoRet(38)}, // the default again
			{Names: []string{"dup"}, Action: specs.ActErrno},
		}})
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"first rule wins", x8664("read"), RetAllow},
		{"second rule", x8664("write"), RetKillProcess},
		{"a rule like the default", x8664("close"), RetErrno | 38},
		{"a rule's errno is EPERM, not defaultErrnoRet", x8664("dup"), RetErrno | uint32(unix.EPERM)},
		{"no rule: the default", x8664("openat"), RetErrno | 38},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(t, v, tc.c); got != tc.want {
				t.Fatalf("%#x, want %#x", got, tc.want)
			}
		})
	}
}

// TestOperators: every SCMP_CMP_ operator on a 64-bit argument, with values that differ in
// the low word, the high word or both, so that a comparison of one word alone fails.
func TestOperators(t *testing.T) {
	const v = uint64(5)<<32 | 100 // high word 5, low word 100
	args := []struct {
		name string
		arg  uint64
	}{
		{"equal", v},
		{"low word below", v - 1},
		{"low word above", v + 1},
		{"high word below, low word above", uint64(4)<<32 | 200},
		{"high word above, low word below", uint64(6)<<32 | 1},
		{"same low word, high word above", uint64(7)<<32 | 100},
		{"same low word, high word 0", 100},
	}
	for _, tc := range []struct {
		op     specs.LinuxSeccompOperator
		value2 uint64
		want   func(arg uint64) bool
	}{
		{specs.OpEqualTo, 0, func(a uint64) bool { return a == v }},
		{specs.OpNotEqual, 0, func(a uint64) bool { return a != v }},
		{specs.OpLessThan, 0, func(a uint64) bool { return a < v }},
		{specs.OpLessEqual, 0, func(a uint64) bool { return a <= v }},
		{specs.OpGreaterThan, 0, func(a uint64) bool { return a > v }},
		{specs.OpGreaterEqual, 0, func(a uint64) bool { return a >= v }},
		{specs.OpMaskedEqual, uint64(4)<<32 | 100, func(a uint64) bool { return a&v == uint64(4)<<32|100 }},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			// the condition on argument 2, so that the others must not matter
			p := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{
				Names: []string{"mmap"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 2, Value: v, ValueTwo: tc.value2, Op: tc.op}}}}})
			for _, a := range args {
				want := uint32(RetAllow)
				if tc.want(a.arg) {
					want = RetErrno | uint32(unix.EPERM)
				}
				c := x8664("mmap", ^uint64(0), v, a.arg, v)
				if got := verdict(t, p, c); got != want {
					t.Errorf("%s (%#x): %#x, want %#x", a.name, a.arg, got, want)
				}
			}
		})
	}
}

// TestSeveralArguments: every condition of a rule must hold; a failed one goes on to the next
// rule with the number reloaded.
func TestSeveralArguments(t *testing.T) {
	p := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"clone"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 0x10000000, ValueTwo: 0x10000000, Op: specs.OpMaskedEqual},
			{Index: 5, Value: 1 << 33, Op: specs.OpGreaterEqual}}},
		{Names: []string{"clone"}, Action: specs.ActLog},
	}})
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"both hold", x8664("clone", 0x10000011, 0, 0, 0, 0, 1<<34), RetErrno | uint32(unix.EPERM)},
		{"the first fails: the next rule", x8664("clone", 0x11, 0, 0, 0, 0, 1<<34), RetLog},
		{"the second fails: the next rule", x8664("clone", 0x10000011, 0, 0, 0, 0, 1<<32), RetLog},
		{"another call", x8664("fork"), RetAllow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(t, p, tc.c); got != tc.want {
				t.Fatalf("%#x, want %#x", got, tc.want)
			}
		})
	}
}

// TestArchitectures: each ABI is filtered with its own numbers, the ones the profile does not
// list are killed, and so is every other architecture.
func TestArchitectures(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"getpid", "rt_sigaction", "set_thread_area"}, Action: specs.ActErrno}}
	eperm := RetErrno | uint32(unix.EPERM)
	aarch64 := call{nr: 172, arch: 0xc00000b7}
	for _, tc := range []struct {
		name  string
		archs []specs.Arch
		calls []call
		want  []uint32
	}{
		{"no list is x86_64 only", nil,
			[]call{x8664("getpid"), x8664("gettid"), i386("getpid"), x32("getpid"), aarch64},
			[]uint32{eperm, RetAllow, RetKillProcess, RetKillProcess, RetKillProcess}},
		{"all three", allABIs,
			[]call{x8664("getpid"), i386("getpid"), x32("getpid"), x8664("gettid"), i386("gettid"), x32("gettid")},
			[]uint32{eperm, eperm, eperm, RetAllow, RetAllow, RetAllow}},
		{"i386 only", []specs.Arch{specs.ArchX86},
			[]call{i386("getpid"), i386("gettid"), x8664("gettid"), x32("gettid")},
			[]uint32{eperm, RetAllow, RetKillProcess, RetKillProcess}},
		{"x32 only", []specs.Arch{specs.ArchX32},
			[]call{x32("getpid"), x32("gettid"), x8664("gettid"), i386("gettid")},
			[]uint32{eperm, RetAllow, RetKillProcess, RetKillProcess}},
		{"x86_64 without x32", []specs.Arch{specs.ArchX86_64, specs.ArchX86},
			[]call{x8664("gettid"), i386("gettid"), x32("gettid")},
			[]uint32{RetAllow, RetAllow, RetKillProcess}},
		{"another family is not filtered, and not allowed", []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64},
			[]call{x8664("gettid"), aarch64},
			[]uint32{RetAllow, RetKillProcess}},
		{"unknown arch value", allABIs,
			[]call{{nr: 39, arch: 0xdeadbeef}, {nr: 39, arch: 0}},
			[]uint32{RetKillProcess, RetKillProcess}},
		// x32's rt_sigaction is 512 (13 is x86_64's only); set_thread_area does not exist on x32,
		// and i386 numbers its calls apart
		{"each ABI's own numbers", allABIs,
			[]call{x32("rt_sigaction"), {nr: 13 | X32SyscallBit, arch: AuditArchX8664}, {nr: 205 | X32SyscallBit, arch: AuditArchX8664},
				x8664("rt_sigaction"), x8664("set_thread_area"), i386("rt_sigaction"), i386("set_thread_area"), {nr: 39, arch: AuditArchI386}},
			[]uint32{eperm, RetAllow, RetAllow, eperm, eperm, eperm, eperm, RetAllow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: tc.archs, Syscalls: rules})
			for i, c := range tc.calls {
				if got := verdict(t, p, c); got != tc.want[i] {
					t.Errorf("call %d (arch %#x, nr %#x): %#x, want %#x", i, c.arch, c.nr, got, tc.want[i])
				}
			}
		})
	}
}

// TestArguments32: on x32 and i386 an argument is compared on its low 32 bits, as libseccomp
// does (the high word the kernel passes is ignored); on x86_64 on all 64.
func TestArguments32(t *testing.T) {
	p := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: allABIs, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 1, Value: 1<<40 | 9, Op: specs.OpEqualTo}}},
		{Names: []string{"getpriority"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 1 << 40, Op: specs.OpGreaterThan}}},
	}})
	eperm := RetErrno | uint32(unix.EPERM)
	for _, tc := range []struct {
		name string
		c    call
		want uint32
	}{
		{"x86_64: both words", x8664("kill", 1, 9), RetAllow},
		{"x86_64: equal", x8664("kill", 1, 1<<40|9), eperm},
		{"x32: the low word", x32("kill", 1, 9), eperm},
		{"x32: a high word passed is ignored", x32("kill", 1, 3<<32|9), eperm},
		{"i386: the low word", i386("kill", 1, 9), eperm},
		{"i386: another low word", i386("kill", 1, 8), RetAllow},
		{"x86_64: 2 > 1<<40 is false", x8664("getpriority", 2), RetAllow},
		{"i386: 2 > 0 (the low word of 1<<40)", i386("getpriority", 2), eperm},
		{"x32: 0 > 0 is false", x32("getpriority", 0), RetAllow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := verdict(t, p, tc.c); got != tc.want {
				t.Fatalf("%#x, want %#x", got, tc.want)
			}
		})
	}
}

// TestInstructionPointerIgnored: nothing in the program reads the instruction pointer.
func TestInstructionPointerIgnored(t *testing.T) {
	p := compile(t, specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}}})
	for _, ip := range []uint64{0, 1, 0xffff_ffff_ffff_ffff} {
		c := x8664("read")
		c.ip = ip
		if got := verdict(t, p, c); got != RetAllow {
			t.Fatalf("ip %#x: %#x", ip, got)
		}
	}
}
