package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// Offsets in struct seccomp_data: nr, arch, instruction_pointer, args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// program assembles a classic BPF program with forward jumps to labels.
type program struct {
	ins    []unix.SockFilter
	labels map[int]int // label → instruction index
	fixups []fixup     // jumps to resolve
	next   int         // last label number handed out
}

// A fixup is a jump whose offsets are known once its labels are placed.
type fixup struct {
	at     int
	jt, jf int  // labels, or -1 for "the next instruction"
	ja     bool // an unconditional jump to jt
}

// label returns a new label, to be placed with mark.
func (p *program) label() int { p.next++; return p.next }

// mark places label l at the next instruction.
func (p *program) mark(l int) {
	if p.labels == nil {
		p.labels = map[int]int{}
	}
	p.labels[l] = len(p.ins)
}

func (p *program) stmt(code uint16, k uint32) {
	p.ins = append(p.ins, unix.SockFilter{Code: code, K: k})
}

// jump emits a conditional jump on the accumulator against k to labels jt and jf (-1: fall
// through to the next instruction). Both must be within 255 instructions.
func (p *program) jump(op uint16, k uint32, jt, jf int) {
	p.fixups = append(p.fixups, fixup{at: len(p.ins), jt: jt, jf: jf})
	p.stmt(unix.BPF_JMP|op|unix.BPF_K, k)
}

// goTo emits an unconditional jump (32-bit offset) to label l.
func (p *program) goTo(l int) {
	p.fixups = append(p.fixups, fixup{at: len(p.ins), jt: l, ja: true})
	p.stmt(unix.BPF_JMP|unix.BPF_JA, 0)
}

// load loads the 32-bit word at off of struct seccomp_data into the accumulator.
func (p *program) load(off uint32) { p.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

// and masks the accumulator with k.
func (p *program) and(k uint32) { p.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }

// ret returns v (a SECCOMP_RET_ value).
func (p *program) ret(v uint32) { p.stmt(unix.BPF_RET|unix.BPF_K, v) }

// resolve fills in every jump's offsets and returns the program.
func (p *program) resolve() ([]unix.SockFilter, error) {
	for _, f := range p.fixups {
		if err := p.fix(f); err != nil {
			return nil, err
		}
	}
	if len(p.ins) > maxInstructions {
		return nil, fmt.Errorf("seccomp: the profile compiles to %d instructions (at most %d): %w", len(p.ins), maxInstructions, errdef.ErrTooLarge)
	}
	return p.ins, nil
}

func (p *program) fix(f fixup) error {
	if f.ja {
		d, err := p.offset(f.at, f.jt)
		if err != nil {
			return err
		}
		p.ins[f.at].K = uint32(d)
		return nil
	}
	jt, err := p.offset(f.at, f.jt)
	if err != nil {
		return err
	}
	jf, err := p.offset(f.at, f.jf)
	if err != nil {
		return err
	}
	if jt > 255 || jf > 255 {
		return fmt.Errorf("seccomp: a rule's argument conditions are too long for one filter: %w", errdef.ErrTooLarge)
	}
	p.ins[f.at].Jt, p.ins[f.at].Jf = uint8(jt), uint8(jf)
	return nil
}

// offset is the jump offset from the instruction at to label l (-1: 0, the next one).
func (p *program) offset(at, l int) (int, error) {
	if l < 0 {
		return 0, nil
	}
	to, ok := p.labels[l]
	if !ok || to <= at {
		return 0, fmt.Errorf("seccomp: internal error: jump to an unplaced label")
	}
	return to - at - 1, nil
}
