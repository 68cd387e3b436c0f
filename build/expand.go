package build

import (
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Expander expands words as BuildKit's Dockerfile frontend does ($VAR, ${VAR}, ${VAR:-word},
// ${VAR:+word}, ${VAR#pat}…, quotes and the escape token), in an environment of KEY=VALUE
// entries (the last entry of a key wins). It is safe for concurrent use.
type Expander struct {
	escape rune
}

// NewExpander returns an expander for a Containerfile whose escape token is escape ('\\' or
// '`').
func NewExpander(escape rune) *Expander {
	if escape == 0 {
		escape = '\\'
	}
	return &Expander{escape: escape}
}

// Expander returns the plan's expander (its file's escape token).
func (p *Plan) Expander() *Expander { return NewExpander(p.Escape) }

// Expand expands one word in env. An unset variable expands to "" ; ${VAR?msg} on an unset
// VAR is an error.
func (e *Expander) Expand(word string, env []string) (string, error) {
	out, _, err := shell.NewLex(e.escape).ProcessWord(word, shell.EnvsFromSlice(env))
	return out, err
}

// ExpandList expands each word of words in env.
func (e *Expander) ExpandList(words []string, env []string) ([]string, error) {
	out := make([]string, len(words))
	for i, w := range words {
		v, err := e.Expand(w, env)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// ExpandFields expands word and splits the result into fields on unquoted white space (what
// EXPOSE does with each of its words).
func (e *Expander) ExpandFields(word string, env []string) ([]string, error) {
	return shell.NewLex(e.escape).ProcessWords(word, shell.EnvsFromSlice(env))
}

// expandRaw expands a heredoc body marked for expansion: quotes are kept and the escape
// token is always '\\' (BuildKit's ExpandRaw).
func expandRaw(word string, env []string) (string, error) {
	lex := shell.NewLex('\\')
	lex.SkipProcessQuotes = true
	out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(env))
	return out, err
}

// ExpandCommand expands cmd in place in env, following BuildKit's rule for which words each
// instruction expands: ENV (keys and values), LABEL, ADD and COPY (sources, destination,
// --chown, --chmod, ADD --checksum; heredoc bodies whose delimiter is unquoted), WORKDIR,
// USER, VOLUME, STOPSIGNAL, EXPOSE (each word, split into fields), RUN (its --mount options
// only: the command line is the shell's). ARG's default is expanded by Scope.Expand, which
// also knows the build args; FROM is expanded at plan time in the meta ARGs. CMD,
// ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER and ONBUILD are left as written (an ONBUILD
// trigger is expanded when it runs, in the child build).
func (e *Expander) ExpandCommand(cmd instructions.Command, env []string) error {
	word := func(w string) (string, error) { return e.Expand(w, env) }
	switch c := cmd.(type) {
	case *instructions.ArgCommand:
		return nil
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			f, err := e.ExpandFields(p, env)
			if err != nil {
				return err
			}
			ports = append(ports, f...)
		}
		c.Ports = ports
		return nil
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(word); err != nil {
			return err
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := ex.ExpandRaw(func(w string) (string, error) { return expandRaw(w, env) }); err != nil {
			return err
		}
	}
	return nil
}

// Scope is the variable state of one stage while it is built: the image config's Env (the
// base image's, then ENV) and the ARG values in scope. The executor makes one per stage and
// passes each step through Expand, in order. Not safe for concurrent use.
type Scope struct {
	plan  *Plan
	stage *Stage
	env   []string // the image config's Env
	vars  []string // env and ARG values: what words expand in and RUN sees
	args  []string // ARG values in scope, KEY=VALUE, declaration order
}

// DefaultPath is the PATH a stage gets when its base image's config sets none (BuildKit and
// buildah add it to the image config too).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// NewScope starts the scope of stage s on a base image whose config Env is baseEnv (nil for
// scratch). PATH is added when baseEnv has none.
func (p *Plan) NewScope(s *Stage, baseEnv []string) *Scope {
	env := append([]string(nil), baseEnv...)
	if _, ok := lookupEnv(env, "PATH"); !ok {
		env = append(env, "PATH="+DefaultPath)
	}
	return &Scope{plan: p, stage: s, env: env, vars: append([]string(nil), env...)}
}

// Fork starts the scope of stage s, whose FROM names the stage of sc, from the state sc ends
// in: as in BuildKit, the ARG values in scope carry over with the image.
func (sc *Scope) Fork(s *Stage) *Scope {
	return &Scope{plan: sc.plan, stage: s, env: append([]string(nil), sc.env...), vars: append([]string(nil), sc.vars...), args: append([]string(nil), sc.args...)}
}

// Env is the image config's Env so far (KEY=VALUE).
func (sc *Scope) Env() []string { return append([]string(nil), sc.env...) }

// Vars is the environment words are expanded in: Env and the ARG values in scope.
func (sc *Scope) Vars() []string { return append([]string(nil), sc.vars...) }

// Args are the ARG values in scope, KEY=VALUE in declaration order (what BuildKit records
// before a RUN's command in the image history).
func (sc *Scope) Args() []string { return append([]string(nil), sc.args...) }

// RunEnv is the environment of a RUN: Vars, then the proxy build args Vars does not set.
func (sc *Scope) RunEnv() []string {
	out := sc.Vars()
	for _, kv := range sc.plan.ProxyEnv() {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := lookupEnv(out, k); !ok {
			out = setEnv(out, k, v)
		}
	}
	return out
}

// Expand returns step st as a fresh command expanded in the scope's variables (see
// ExpandCommand), and applies what it changes to the scope: ENV sets Env and Vars; ARG
// declares its names, each valued by its --build-arg, else its default (expanded), else the
// meta ARG of that name, else left without a value (the returned ArgCommand carries the
// values). Errors name FILE:LINE.
func (sc *Scope) Expand(st *Step) (instructions.Command, error) {
	cmd, err := st.fresh()
	if err != nil {
		return nil, err
	}
	p := sc.plan
	if a, ok := cmd.(*instructions.ArgCommand); ok {
		for i, kv := range a.Args {
			bv, hasBuild := p.BuildArgs[kv.Key]
			switch {
			case hasBuild:
				v := bv
				kv.Value = &v
			case kv.Value != nil:
				v, err := p.Expander().Expand(*kv.Value, sc.vars)
				if err != nil {
					return nil, errAt(p.File, st.Line, nil, "expand ARG %s: %v", kv.Key, err)
				}
				kv.Value = &v
			default:
				if v, ok := lookupEnv(p.MetaArgs, kv.Key); ok {
					kv.Value = &v
				}
			}
			a.Args[i] = kv
			if kv.Value != nil {
				sc.vars = setEnv(sc.vars, kv.Key, *kv.Value)
				sc.args = setEnv(sc.args, kv.Key, *kv.Value)
			}
		}
		return a, nil
	}
	if err := p.Expander().ExpandCommand(cmd, sc.vars); err != nil {
		return nil, errAt(p.File, st.Line, nil, "expand %s: %v", strings.ToUpper(st.Name), err)
	}
	if e, ok := cmd.(*instructions.EnvCommand); ok {
		for _, kv := range e.Env {
			sc.env = setEnv(sc.env, kv.Key, kv.Value)
			sc.vars = setEnv(sc.vars, kv.Key, kv.Value)
		}
	}
	return cmd, nil
}

// fresh re-parses the step from its node, so expansion never changes the plan.
func (st *Step) fresh() (instructions.Command, error) {
	v, err := instructions.ParseInstruction(st.node)
	if err != nil {
		return nil, instructionError(st.Stage.planFile(), st.node, err)
	}
	c, ok := v.(instructions.Command)
	if !ok {
		return nil, fmt.Errorf("parse %s: not a command", st.Original)
	}
	return c, nil
}

// WorkingDir returns the WORKDIR after `WORKDIR dir` in a stage whose WORKDIR is cur:
// a relative dir is relative to cur ("/" when empty); the result is clean and absolute.
func WorkingDir(cur, dir string) string {
	if cur == "" {
		cur = "/"
	}
	if !path.IsAbs(dir) {
		dir = path.Join(cur, dir)
	}
	return path.Clean("/" + dir)
}
