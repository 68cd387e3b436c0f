package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// layout emits the whole program: the architecture check, one section of rules per ABI the
// profile lists (x86_64 and x32 share AUDIT_ARCH_X86_64 and are told apart by the x32 bit of
// the number), the default action at the end of each, and kill-process for everything else.
// Sections are long, so they are entered and skipped with unconditional jumps.
func layout(archs abis, rules []rule, def uint32) *program {
	p := &program{}
	not64, bad := p.label(), p.label()
	p.load(offArch)
	is64 := p.label()
	p.jump(unix.BPF_JEQ, AuditArchX8664, is64, -1)
	p.goTo(not64)
	p.mark(is64)
	if archs[specs.ArchX86_64] || archs[specs.ArchX32] {
		p.x8664(archs, rules, def)
	} else {
		p.goTo(bad)
	}
	p.mark(not64)
	if archs[specs.ArchX86] {
		p.i386(rules, def)
	}
	p.mark(bad)
	p.ret(RetKillProcess)
	return p
}

// x8664 emits what follows an AUDIT_ARCH_X86_64 match: the x32 section for numbers with the
// x32 bit, the x86_64 one for the others; an ABI the profile does not list is killed.
func (p *program) x8664(archs abis, rules []rule, def uint32) {
	p.load(offNr)
	native, isX32 := p.label(), p.label()
	p.jump(unix.BPF_JSET, X32SyscallBit, isX32, -1)
	p.goTo(native)
	p.mark(isX32)
	if archs[specs.ArchX32] {
		p.section(rules, specs.ArchX32, X32SyscallBit, def)
	} else {
		p.ret(RetKillProcess)
	}
	p.mark(native)
	if archs[specs.ArchX86_64] {
		p.section(rules, specs.ArchX86_64, 0, def)
	} else {
		p.ret(RetKillProcess)
	}
}

// i386 emits the check for AUDIT_ARCH_I386 and its section; another architecture falls
// through to what follows.
func (p *program) i386(rules []rule, def uint32) {
	other, is32 := p.label(), p.label()
	p.jump(unix.BPF_JEQ, AuditArchI386, is32, -1)
	p.goTo(other)
	p.mark(is32)
	p.load(offNr)
	p.section(rules, specs.ArchX86, 0, def)
	p.mark(other)
}

// section emits the rules of one ABI in profile order, their numbers with bit set, then the
// default action. The accumulator holds the system call number. Arguments are compared on
// 64 bits on x86_64 and on their low 32 bits on x32 and i386, as libseccomp does.
func (p *program) section(rules []rule, abi specs.Arch, bit uint32, def uint32) {
	for _, r := range rules {
		if n, ok := r.nr[abi]; ok {
			p.rule(uint32(n)|bit, r.args, r.action, abi != specs.ArchX86_64)
		}
	}
	p.ret(def)
}

// rule emits: if nr matches and every argument condition holds, return action. The
// accumulator holds the system call number before and after.
func (p *program) rule(nr uint32, args []specs.LinuxSeccompArg, action uint32, arch32 bool) {
	skip := p.label()
	p.jump(unix.BPF_JEQ, nr, -1, skip)
	if len(args) == 0 {
		p.ret(action)
		p.mark(skip)
		return
	}
	fail := p.label()
	for _, a := range args {
		p.arg(a, fail, arch32)
	}
	p.ret(action)
	p.mark(fail)
	p.load(offNr)
	p.mark(skip)
}

// arg falls through when the condition holds and jumps to fail when not. Arguments are 64-bit
// (two words, low first on little-endian x86); with arch32 only the low word is compared.
func (p *program) arg(a specs.LinuxSeccompArg, fail int, arch32 bool) {
	lo := offArgs + 8*uint32(a.Index)
	hi := lo + 4
	vlo, vhi := uint32(a.Value), uint32(a.Value>>32)
	if arch32 {
		vhi = 0
	}
	pass := p.label()
	cmp := func(word, k uint32, op uint16, jt, jf int) {
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
		v2lo, v2hi := uint32(a.ValueTwo), uint32(a.ValueTwo>>32)
		if !arch32 {
			p.load(hi)
			p.and(vhi)
			p.jump(unix.BPF_JEQ, v2hi, -1, fail)
		}
		p.load(lo)
		p.and(vlo)
		p.jump(unix.BPF_JEQ, v2lo, pass, fail)
	}
	p.mark(pass)
}
