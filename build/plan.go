package build

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// Scratch is the FROM operand of the empty base.
const Scratch = "scratch"

// Plan is a parsed Containerfile and the order in which to build its target. It is read-only
// once Load returns and safe for concurrent use; per-stage state lives in a Scope.
type Plan struct {
	File   string // the Containerfile, as named to Load
	Source []byte // its content
	Escape rune   // the escape token (`# escape=`), '\\' by default
	Syntax string // the `# syntax=` directive, if any

	// Stages are the stages the target needs, in an order that builds every dependency
	// before its dependants (file order), the target last. Unneeded stages are left out.
	Stages []*Stage
	// Target is the stage built: --target, else the last stage of the file.
	Target *Stage
	// All is every stage of the file, in file order (stage indexes count here).
	All []*Stage

	// MetaArgs is the global scope in which FROM lines are expanded, KEY=VALUE: the
	// predefined platform ARGs, then the ARGs declared before the first FROM with their
	// values. A stage sees one only after redeclaring it (`ARG NAME`).
	MetaArgs []string
	// BuildArgs are the --build-arg values the plan was made with.
	BuildArgs map[string]string
	// BuildPlatform and TargetPlatform are the platforms behind BUILD* and TARGET* ARGs.
	BuildPlatform, TargetPlatform ocispec.Platform

	// Warnings are what the build should print and go on after: an unknown `# syntax=`,
	// empty continuation lines, build args no ARG consumed.
	Warnings []Warning

	lex          *shell.Lex
	metaDeclared map[string]bool // names of the ARGs before the first FROM
}

// Stage is one FROM and the instructions up to the next.
type Stage struct {
	Index    int    // position in the file, from 0 (what COPY --from=N names)
	Name     string // the AS name, lower-cased; "" when the stage has none
	Line     int    // line of the FROM
	Original string // the FROM line as written
	// Base is the FROM operand after expansion of the meta ARGs: an image reference,
	// Scratch, or the name of an earlier stage (then BaseStage is that stage).
	Base      string
	BaseStage *Stage
	// Platform is FROM --platform after expansion ("" when not given).
	Platform string
	// Steps are the stage's instructions in order, FROM excluded.
	Steps []*Step
	// Deps are the stages this one needs built first: its base stage, COPY --from and
	// RUN --mount from= stages, without repeats, in first-use order.
	Deps []*Stage
	// Images are the images this stage reads besides its base: COPY --from and
	// RUN --mount from= operands that name no stage.
	Images []string

	file                 string
	rawBase, rawPlatform string
	laterBase            *Stage // FROM names a stage defined further down
}

func (s *Stage) planFile() string { return s.file }

// DisplayName is the stage's name, or its index when it has none.
func (s *Stage) DisplayName() string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("%d", s.Index)
}

// Step is one instruction of a stage.
type Step struct {
	Stage    *Stage
	Index    int    // position in the stage
	Line     int    // first line in the Containerfile (the FROM line for ONBUILD triggers)
	Name     string // the instruction, lower-case: "copy", "run", …
	Original string // the instruction as written
	OnBuild  bool   // an ONBUILD trigger of the base image (see Plan.Triggers)
	// Command is the typed instruction as parsed, before expansion. Treat it as read-only:
	// Scope.Expand returns a fresh, expanded copy.
	Command instructions.Command
	// FromStage is the stage COPY --from names, FromImage the image when it names no stage.
	FromStage *Stage
	FromImage string
	// Mounts are RUN --mount's sources, in flag order: the stage or image each from= names
	// (both empty for the build context or no source).
	Mounts []MountSource

	node *parser.Node
}

// MountSource is where one RUN --mount reads from.
type MountSource struct {
	Stage *Stage
	Image string
}

// Images lists every image the plan reads, without repeats: the bases of its stages that are
// not stages (Scratch excluded) and the images COPY --from and RUN --mount from= name.
func (p *Plan) Images() []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if s != "" && s != Scratch && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, s := range p.Stages {
		if s.BaseStage == nil {
			add(s.Base)
		}
		for _, im := range s.Images {
			add(im)
		}
	}
	return out
}

func (p *Plan) errAt(line int, format string, args ...any) error {
	return errAt(p.File, line, nil, format, args...)
}

// findStage resolves a --from / from= operand: a stage name (case-insensitive) or index.
// ok is false when it names no stage (an image, then).
func (p *Plan) findStage(name string, line int) (*Stage, bool, error) {
	for _, s := range p.All {
		if s.Name != "" && strings.EqualFold(s.Name, name) {
			return s, true, nil
		}
	}
	if n, isIndex := atoiStage(name); isIndex {
		if n >= len(p.All) {
			return nil, false, errAt(p.File, line, errdef.ErrNotFound, "stage index %d: the file has %d stages", n, len(p.All))
		}
		return p.All[n], true, nil
	}
	return nil, false, nil
}

// resolveStages expands every FROM and links each stage to the stages it reads.
func (p *Plan) resolveStages() error {
	meta := shell.EnvsFromSlice(p.MetaArgs)
	for _, s := range p.All {
		base, _, err := p.lex.ProcessWord(s.rawBase, meta)
		if err != nil {
			return p.errAt(s.Line, "expand FROM %s: %v", s.rawBase, err)
		}
		if base == "" {
			return p.errAt(s.Line, "FROM %s expands to an empty name", s.rawBase)
		}
		s.Base = base
		for _, o := range p.All {
			if o.Name == "" || !strings.EqualFold(o.Name, base) {
				continue
			}
			if o.Index < s.Index {
				s.BaseStage = o
			} else if o.Index > s.Index && !strings.EqualFold(o.rawBase, o.Name) {
				s.laterBase = o
			}
			break // the first stage of that name decides
		}
		if s.rawPlatform != "" {
			pl, _, err := p.lex.ProcessWord(s.rawPlatform, meta)
			if err != nil {
				return p.errAt(s.Line, "expand FROM --platform=%s: %v", s.rawPlatform, err)
			}
			if pl == "" {
				return p.errAt(s.Line, "FROM --platform=%s expands to an empty platform", s.rawPlatform)
			}
			if _, err := image.ParsePlatform(pl); err != nil {
				return p.errAt(s.Line, "FROM --platform=%s: %v", pl, err)
			}
			s.Platform = pl
		}
		if s.BaseStage != nil {
			s.addDep(s.BaseStage)
		}
		for _, st := range s.Steps {
			if err := p.resolveStep(st); err != nil {
				return err
			}
		}
	}
	return p.checkCycles()
}

func (s *Stage) addDep(d *Stage) {
	for _, x := range s.Deps {
		if x == d {
			return
		}
	}
	s.Deps = append(s.Deps, d)
}

func (s *Stage) addImage(im string) {
	for _, x := range s.Images {
		if x == im {
			return
		}
	}
	s.Images = append(s.Images, im)
}

// resolveStep links a COPY --from or RUN --mount from= to its stage or image.
func (p *Plan) resolveStep(st *Step) error {
	s := st.Stage
	resolve := func(flag, from string) (*Stage, string, error) {
		if strings.Contains(from, "$") {
			return nil, "", p.errAt(st.Line, "%s=%s: variable expansion is not supported in %s (BuildKit's rule): define a stage with FROM and a global ARG instead", flag, from, flag)
		}
		dep, ok, err := p.findStage(from, st.Line)
		if err != nil {
			return nil, "", err
		}
		if !ok {
			s.addImage(from)
			return nil, from, nil
		}
		s.addDep(dep)
		return dep, "", nil
	}
	switch c := st.Command.(type) {
	case *instructions.CopyCommand:
		if c.From == "" {
			return nil
		}
		dep, im, err := resolve("--from", c.From)
		if err != nil {
			return err
		}
		st.FromStage, st.FromImage = dep, im
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(c) {
			var ms MountSource
			if m.From != "" {
				dep, im, err := resolve("--mount from", m.From)
				if err != nil {
					return err
				}
				ms = MountSource{Stage: dep, Image: im}
			}
			st.Mounts = append(st.Mounts, ms)
		}
	}
	return nil
}

// depLine is the line of the first step of s that reads d (its FROM when d is the base).
func depLine(s, d *Stage) (int, string) {
	if s.BaseStage == d {
		return s.Line, "FROM " + s.Base
	}
	for _, st := range s.Steps {
		if st.FromStage == d {
			return st.Line, st.Original
		}
		for _, m := range st.Mounts {
			if m.Stage == d {
				return st.Line, st.Original
			}
		}
	}
	return s.Line, s.Original
}

// checkCycles refuses a stage that depends on itself through any chain of dependencies.
func (p *Plan) checkCycles() error {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(p.All))
	var stack []*Stage
	var visit func(s *Stage) error
	visit = func(s *Stage) error {
		color[s.Index] = grey
		stack = append(stack, s)
		for _, d := range s.Deps {
			switch color[d.Index] {
			case grey:
				var names []string
				i := len(stack) - 1
				for ; i >= 0 && stack[i] != d; i-- {
				}
				for _, x := range stack[i:] {
					names = append(names, x.DisplayName())
				}
				names = append(names, d.DisplayName())
				line, what := depLine(s, d)
				return p.errAt(line, "%s: circular dependency between stages: %s", what, strings.Join(names, " → "))
			case white:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[s.Index] = black
		return nil
	}
	for _, s := range p.All {
		if color[s.Index] == white {
			if err := visit(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// plan picks the target, prunes the stages it does not need and orders the rest.
func (p *Plan) plan(target string) error {
	p.Target = p.All[len(p.All)-1]
	if target != "" {
		p.Target = nil
		for _, s := range p.All {
			if s.Name != "" && strings.EqualFold(s.Name, target) {
				p.Target = s
				break
			}
		}
		if p.Target == nil {
			var names []string
			for _, s := range p.All {
				if s.Name != "" {
					names = append(names, s.Name)
				}
			}
			return errAt(p.File, 0, errdef.ErrNotFound, "target stage %q not found (stages: %s)", target, strings.Join(names, ", "))
		}
	}
	need := make([]bool, len(p.All))
	var mark func(s *Stage)
	mark = func(s *Stage) {
		if need[s.Index] {
			return
		}
		need[s.Index] = true
		for _, d := range s.Deps {
			mark(d)
		}
	}
	mark(p.Target)
	for _, s := range p.All {
		if !need[s.Index] {
			continue
		}
		if s.laterBase != nil {
			return p.errAt(s.Line, "FROM %s: stage %q is defined after this one (line %d): a stage can only build on an earlier one", s.Base, s.laterBase.Name, s.laterBase.Line)
		}
		for _, d := range s.Deps {
			if d.Index >= s.Index {
				line, what := depLine(s, d)
				return p.errAt(line, "%s: stage %s is defined after this one (line %d): a stage can only read from an earlier one", what, d.DisplayName(), d.Line)
			}
		}
		p.Stages = append(p.Stages, s)
	}
	return nil
}

// Triggers parses the ONBUILD triggers of a base image (its config's OnBuild) into steps that
// run first in stage s, as BuildKit does. A trigger may name a stage of the file with
// --from only if that stage is in the plan and before s.
func (p *Plan) Triggers(s *Stage, triggers []string) ([]*Step, error) {
	var out []*Step
	for i, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, p.errAt(s.Line, "ONBUILD trigger %q of %s: %v", t, s.Base, err)
		}
		if len(res.AST.Children) != 1 {
			return nil, p.errAt(s.Line, "ONBUILD trigger %q of %s: not one instruction", t, s.Base)
		}
		n := res.AST.Children[0]
		n.StartLine, n.EndLine = s.Line, s.Line
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return nil, p.errAt(s.Line, "ONBUILD trigger %q of %s: %v", t, s.Base, err)
		}
		st := &Step{Stage: s, Index: i, Line: s.Line, Name: strings.ToLower(n.Value), Original: strings.TrimSpace(n.Original), OnBuild: true, Command: c, node: n}
		// resolve against the file's stages without changing the plan
		tmp := *s
		tmp.Deps, tmp.Images = nil, nil
		st.Stage = &tmp
		if err := p.resolveStep(st); err != nil {
			return nil, err
		}
		st.Stage = s
		for _, d := range tmp.Deps {
			if d.Index >= s.Index || !p.planned(d) {
				return nil, p.errAt(s.Line, "ONBUILD trigger %q of %s reads stage %s, which is not built before this stage", t, s.Base, d.DisplayName())
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func (p *Plan) planned(s *Stage) bool {
	for _, x := range p.Stages {
		if x == s {
			return true
		}
	}
	return false
}
