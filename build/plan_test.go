package build

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

var amd64 = &ocispec.Platform{OS: "linux", Architecture: "amd64"}

func load(t *testing.T, name string, opts LoadOptions) (*Plan, error) {
	t.Helper()
	opts.File = filepath.Join("testdata", name)
	if opts.BuildPlatform == nil {
		opts.BuildPlatform = amd64
	}
	return Load(opts)
}

func stageNames(ss []*Stage) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.DisplayName())
	}
	return out
}

// TestPlan: stages needed by the target, in dependency order, unneeded ones pruned.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name, file, target string
		args               map[string]string
		stages             []string
		bases              []string
		images             []string
	}{
		{name: "multi-stage prunes the unused stage", file: "multistage.Containerfile", stages: []string{"base", "final"}, bases: []string{"alpine:3.20", "scratch"}, images: []string{"alpine:3.20"}},
		{name: "target in the middle", file: "multistage.Containerfile", target: "unused", stages: []string{"unused"}, bases: []string{"busybox"}, images: []string{"busybox"}},
		{name: "target is case-insensitive", file: "multistage.Containerfile", target: "BASE", stages: []string{"base"}, bases: []string{"alpine:3.20"}},
		{name: "FROM an earlier stage", file: "from-stage.Containerfile", stages: []string{"builder", "tested", "2"}, bases: []string{"alpine:3.20", "builder", "scratch"}, images: []string{"alpine:3.20"}},
		{name: "COPY --from and RUN --mount from images", file: "images.Containerfile", stages: []string{"tools", "one"}, bases: []string{"alpine", "debian:12"}, images: []string{"alpine", "debian:12", "golang:1.23", "registry.example/tools:1"}},
		{name: "meta ARGs in FROM", file: "meta-args.Containerfile", stages: []string{"1"}, bases: []string{"docker.io/library/alpine:3.20"}},
		{name: "meta ARGs overridden by --build-arg", file: "meta-args.Containerfile", target: "build", args: map[string]string{"REGISTRY": "quay.io", "TAG": "edge"}, stages: []string{"build"}, bases: []string{"quay.io/library/alpine:edge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := load(t, tc.file, LoadOptions{Target: tc.target, BuildArgs: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if got := stageNames(p.Stages); !reflect.DeepEqual(got, tc.stages) {
				t.Fatalf("stages = %q, want %q", got, tc.stages)
			}
			if p.Target != p.Stages[len(p.Stages)-1] {
				t.Fatalf("target %s is not last", p.Target.DisplayName())
			}
			var bases []string
			for _, s := range p.Stages {
				bases = append(bases, s.Base)
			}
			if !reflect.DeepEqual(bases, tc.bases) {
				t.Fatalf("bases = %q, want %q", bases, tc.bases)
			}
			if tc.images != nil && !reflect.DeepEqual(p.Images(), tc.images) {
				t.Fatalf("images = %q, want %q", p.Images(), tc.images)
			}
		})
	}
}

func TestPlanLinks(t *testing.T) {
	p, err := load(t, "multistage.Containerfile", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	final := p.Target
	if final.Steps[0].FromStage != p.All[0] || final.Steps[1].FromStage != p.All[0] {
		t.Fatal("COPY --from=base and --from=0 should both name stage 0")
	}
	if final.Steps[0].Line != 9 || final.Line != 8 {
		t.Fatalf("lines: FROM %d, COPY %d", final.Line, final.Steps[0].Line)
	}
	p, err = load(t, "images.Containerfile", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := p.Target.Steps[1]
	want := []MountSource{{Stage: p.All[0]}, {}, {Image: "registry.example/tools:1"}}
	if !reflect.DeepEqual(run.Mounts, want) {
		t.Fatalf("mounts = %+v", run.Mounts)
	}
	if p.Target.Steps[0].FromImage != "golang:1.23" {
		t.Fatalf("from image = %q", p.Target.Steps[0].FromImage)
	}
}

// TestPlanErrors: each error names FILE:LINE.
func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, target string
		line               int
		sentinel           error
		msg                string
	}{
		{name: "cycle of --from", file: "cycle.Containerfile", line: 5, msg: "circular dependency between stages: a → b → a"},
		{name: "stage copies from itself", file: "self-cycle.Containerfile", line: 2, msg: "circular dependency between stages: a → a"},
		{name: "COPY --from a later stage", file: "copy-later.Containerfile", target: "first", line: 2, msg: "stage second is defined after this one"},
		{name: "FROM a later stage", file: "from-later.Containerfile", target: "first", line: 1, msg: `stage "later" is defined after this one`},
		{name: "unknown instruction", file: "unknown-instruction.Containerfile", line: 4, msg: "unknown instruction FETCH"},
		{name: "unknown flag", file: "unknown-flag.Containerfile", line: 2, msg: "unknown flag: --bogus"},
		{name: "stage index out of range", file: "bad-index.Containerfile", line: 2, sentinel: errdef.ErrNotFound, msg: "stage index 7"},
		{name: "variable in --from", file: "from-variable.Containerfile", line: 4, msg: "variable expansion is not supported"},
		{name: "missing target", file: "multistage.Containerfile", target: "nope", sentinel: errdef.ErrNotFound, msg: `target stage "nope" not found (stages: base, unused, final)`},
		{name: "duplicate stage name", file: "duplicate-stage.Containerfile", line: 2, msg: `stage name "x" is already used`},
		{name: "instruction before FROM", file: "before-from.Containerfile", line: 2, msg: "ENV before the first FROM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.file, LoadOptions{Target: tc.target})
			if err == nil {
				t.Fatal("no error")
			}
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("%v: not a *build.Error", err)
			}
			if be.Line != tc.line || !strings.HasSuffix(be.File, tc.file) {
				t.Fatalf("%v: at %s:%d, want line %d", err, be.File, be.Line, tc.line)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("%v: want %q", err, tc.msg)
			}
			want := tc.sentinel
			if want == nil {
				want = errdef.ErrInvalidArgument
			}
			if !errors.Is(err, want) {
				t.Fatalf("%v: does not wrap %v", err, want)
			}
			prefix := filepath.Join("testdata", tc.file) + ":"
			if tc.line > 0 && !strings.HasPrefix(err.Error(), prefix) {
				t.Fatalf("%v: want prefix %s", err, prefix)
			}
		})
	}
}

func TestFindContainerfile(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindContainerfile(dir, ""); !errors.Is(err, errdef.ErrNotFound) {
		t.Fatalf("empty context: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0644)
	if f, _ := FindContainerfile(dir, ""); filepath.Base(f) != "Dockerfile" {
		t.Fatalf("found %s", f)
	}
	os.WriteFile(filepath.Join(dir, "Containerfile"), []byte("FROM scratch\n"), 0644)
	if f, _ := FindContainerfile(dir, ""); filepath.Base(f) != "Containerfile" {
		t.Fatalf("Containerfile should win, found %s", f)
	}
	outside := filepath.Join(t.TempDir(), "Other")
	os.WriteFile(outside, []byte("FROM scratch\n"), 0644)
	if f, err := FindContainerfile(dir, outside); err != nil || f != outside {
		t.Fatalf("a file outside the context (as podman): %s, %v", f, err)
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       map[string]string
		want       []string
	}{
		{name: "unknown syntax warns", file: "syntax.Containerfile", want: []string{`syntax.Containerfile:1: syntax "example.com/custom/frontend:2" is not docker/dockerfile:1`}},
		{name: "dockerfile:1.x-labs is ours", file: "syntax-ok.Containerfile"},
		{name: "unused build arg warns, proxy and predefined do not", file: "meta-args.Containerfile", args: map[string]string{"NOPE": "1", "HTTP_PROXY": "x", "no_proxy": "y", "TARGETARCH": "arm64", "TAG": "1"}, want: []string{"build argument NOPE was not consumed"}},
		{name: "ARG in a pruned stage does not consume", file: "args.Containerfile", args: map[string]string{"FROMBUILD": "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := load(t, tc.file, LoadOptions{BuildArgs: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Warnings) != len(tc.want) {
				t.Fatalf("warnings = %q, want %q", p.Warnings, tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(p.Warnings[i].String(), w) {
					t.Fatalf("warning %q, want %q", p.Warnings[i], w)
				}
			}
		})
	}
}

func TestPredefinedArgs(t *testing.T) {
	p, err := load(t, "meta-args.Containerfile", LoadOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
		"TARGETPLATFORM": "linux/arm/v7", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7", "TARGETSTAGE": "default",
		"REGISTRY": "docker.io", "BASE": "docker.io/library/alpine", "TAG": "3.20"}
	for k, v := range want {
		if got, ok := lookupEnv(p.MetaArgs, k); !ok || got != v {
			t.Errorf("%s = %q (%v), want %q", k, got, ok, v)
		}
	}
	if p.All[0].Platform != "linux/amd64" {
		t.Errorf("FROM --platform=$BUILDPLATFORM = %q", p.All[0].Platform)
	}
}

func TestParseBuildArgs(t *testing.T) {
	env := map[string]string{"FROMENV": "e", "EMPTY": ""}
	got, err := ParseBuildArgs([]string{"A=1", "B=", "C=x=y", "FROMENV", "EMPTY", "UNSET"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": "1", "B": "", "C": "x=y", "FROMENV": "e", "EMPTY": ""}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v", got)
	}
	if _, err := ParseBuildArgs([]string{"=1"}, nil); !errors.Is(err, errdef.ErrInvalidArgument) {
		t.Fatalf("empty name: %v", err)
	}
}

// scopeRun runs every step of the target's stages through scopes, the way the executor does.
func scopeRun(t *testing.T, p *Plan) (map[*Stage]*Scope, map[*Step]instructions.Command) {
	t.Helper()
	scopes := map[*Stage]*Scope{}
	cmds := map[*Step]instructions.Command{}
	for _, s := range p.Stages {
		var sc *Scope
		if s.BaseStage != nil {
			sc = scopes[s.BaseStage].Fork(s)
		} else {
			sc = p.NewScope(s, []string{"PATH=/bin", "BASEENV=base"})
		}
		for _, st := range s.Steps {
			c, err := sc.Expand(st)
			if err != nil {
				t.Fatalf("step %s: %v", st.Original, err)
			}
			cmds[st] = c
		}
		scopes[s] = sc
	}
	return scopes, cmds
}

func labels(cmds map[*Step]instructions.Command) map[string]string {
	out := map[string]string{}
	for _, c := range cmds {
		if l, ok := c.(*instructions.LabelCommand); ok {
			for _, kv := range l.Labels {
				out[kv.Key] = kv.Value
			}
		}
	}
	return out
}

// TestScope: ARG and ENV semantics and which words each instruction expands (BuildKit's rules).
func TestScope(t *testing.T) {
	p, err := load(t, "args.Containerfile", LoadOptions{BuildArgs: map[string]string{"FROMBUILD": "cli", "OVERRIDDEN": "cli", "HTTP_PROXY": "http://proxy"}})
	if err != nil {
		t.Fatal(err)
	}
	scopes, cmds := scopeRun(t, p)
	base := p.All[0]
	want := map[string]string{
		"before":     "-",                    // a global ARG is not in scope before the stage redeclares it
		"after":      "global-default-amd64", // ARG NAME takes the meta ARG's value; predefined after ARG TARGETARCH
		"local":      "local-global-default",
		"frombuild":  "cli",                  // --build-arg beats the default
		"overridden": "cli",                  // --build-arg beats the meta ARG
		"e2":         "",                     // ENV E1=env1 E2=${E1}: the same instruction does not see E1
		"inherited":  "local-global-default", // FROM a stage keeps its ARG values (BuildKit)
	}
	got := labels(cmds)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s = %q, want %q", k, got[k], v)
		}
	}
	for _, st := range base.Steps {
		c := cmds[st]
		switch c := c.(type) {
		case *instructions.WorkdirCommand:
			if c.Path != "/w/local-global-default" {
				t.Errorf("WORKDIR %q", c.Path)
			}
		case *instructions.UserCommand:
			if c.User != "local-global-default:group" {
				t.Errorf("USER %q", c.User)
			}
		case *instructions.ExposeCommand:
			if !reflect.DeepEqual(c.Ports, []string{"80", "443/udp"}) {
				t.Errorf("EXPOSE %q", c.Ports)
			}
		case *instructions.VolumeCommand:
			if c.Volumes[0] != "/data/local-global-default" {
				t.Errorf("VOLUME %q", c.Volumes)
			}
		case *instructions.StopSignalCommand:
			if c.Signal != "SIG" {
				t.Errorf("STOPSIGNAL %q", c.Signal)
			}
		case *instructions.CmdCommand:
			if c.CmdLine[0] != "echo $GLOBAL" {
				t.Errorf("CMD is not expanded: %q", c.CmdLine)
			}
		case *instructions.CopyCommand:
			if len(c.SourcePaths) == 1 {
				if c.Chown != "local-global-default:local-global-default" || c.SourcePaths[0] != "src-local-global-default" || c.DestPath != "/dst-local-global-default/" {
					t.Errorf("COPY %+v", c)
				}
			} else if c.DestPath == "/heredoc" && c.SourceContents[0].Data != "value=local-global-default\n" {
				t.Errorf("heredoc %q", c.SourceContents[0].Data)
			} else if c.DestPath == "/heredoc-quoted" && c.SourceContents[0].Data != "value=$LOCAL\n" {
				t.Errorf("quoted heredoc %q", c.SourceContents[0].Data)
			}
		case *instructions.RunCommand:
			m := instructions.GetMounts(c)
			if len(m) != 1 || m[0].CacheID != "cache-local-global-default" || m[0].Target != "/cache-local-global-default" || m[0].Type != instructions.MountTypeCache {
				t.Errorf("RUN --mount %+v", m[0])
			}
			if c.CmdLine[0] != "echo $LOCAL" {
				t.Errorf("RUN's command is the shell's: %q", c.CmdLine)
			}
		case *instructions.ArgCommand:
			if c.Args[0].Key == "UNSET" && c.Args[0].Value != nil {
				t.Errorf("ARG UNSET has a value")
			}
		}
	}
	sc := scopes[base]
	if v, _ := lookupEnv(sc.Env(), "E1"); v != "env1" {
		t.Errorf("Env E1 = %q", v)
	}
	if _, ok := lookupEnv(sc.Env(), "LOCAL"); ok {
		t.Error("an ARG is not in the image Env")
	}
	if v, _ := lookupEnv(sc.Vars(), "LOCAL"); v != "local-global-default" {
		t.Errorf("Vars LOCAL = %q", v)
	}
	if v, _ := lookupEnv(sc.RunEnv(), "HTTP_PROXY"); v != "http://proxy" {
		t.Errorf("RunEnv HTTP_PROXY = %q", v)
	}
	if _, ok := lookupEnv(sc.Vars(), "HTTP_PROXY"); ok {
		t.Error("a proxy arg is not a variable of the stage")
	}
	if v, _ := lookupEnv(sc.Env(), "PATH"); v != "/bin" {
		t.Errorf("the base image's PATH is kept: %q", v)
	}
	// expansion never changes the plan
	if c := base.Steps[len(base.Steps)-1].Command.(*instructions.RunCommand); instructions.GetMounts(c)[0].CacheID != "" {
		t.Error("the plan's command was mutated")
	}
	if s := p.NewScope(base, nil); !reflect.DeepEqual(s.Env(), []string{"PATH=" + DefaultPath}) {
		t.Errorf("scratch scope env = %q", s.Env())
	}
}

func TestEscapeToken(t *testing.T) {
	p, err := load(t, "escape.Containerfile", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Escape != '`' {
		t.Fatalf("escape = %q", p.Escape)
	}
	_, cmds := scopeRun(t, p)
	got := labels(cmds)
	want := map[string]string{"a": "$A", "b": "x", "c": `C:\path`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("labels %q, want %q", got, want)
	}
	e := p.Expander()
	if v, _ := e.Expand("`$A-$A", []string{"A=1"}); v != "$A-1" {
		t.Fatalf("Expand = %q", v)
	}
	if v, _ := NewExpander('\\').ExpandList([]string{"${A:-d}", `\$A`, "'$A'"}, nil); !reflect.DeepEqual(v, []string{"d", "$A", "$A"}) {
		t.Fatalf("ExpandList = %q", v)
	}
}

func TestTriggers(t *testing.T) {
	p, err := load(t, "multistage.Containerfile", LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	steps, err := p.Triggers(p.Target, []string{"COPY --from=base /a /b", "RUN echo $X"})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].FromStage != p.All[0] || !steps[0].OnBuild || steps[0].Line != p.Target.Line {
		t.Fatalf("steps %+v", steps[0])
	}
	if _, err := p.Triggers(p.Target, []string{"COPY --from=unused /a /b"}); err == nil {
		t.Fatal("a trigger reading an unbuilt stage should fail")
	}
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range [][3]string{{"", "a", "/a"}, {"/x", "y/../z", "/x/z"}, {"/x", "/abs", "/abs"}, {"/", "..", "/"}} {
		if got := WorkingDir(tc[0], tc[1]); got != tc[2] {
			t.Errorf("WorkingDir(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}
