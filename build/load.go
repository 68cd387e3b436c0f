package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image"
)

// MaxContainerfileSize caps the Containerfile read by Load.
const MaxContainerfileSize = 8 << 20

// LoadOptions say what to build: `wharf build [-f FILE] [--target T] [--build-arg K=V]…
// [--platform P] CONTEXT`.
type LoadOptions struct {
	// ContextDir is the build context. It is where the Containerfile is looked for when File
	// is empty.
	ContextDir string
	// File is the Containerfile (-f). Empty: ContextDir/Containerfile, else
	// ContextDir/Dockerfile. A relative File is relative to the working directory, as with
	// podman; it may lie outside the context.
	File string
	// Target is the stage to build (--target): a stage name. Empty: the last stage.
	Target string
	// BuildArgs are the --build-arg values (see ParseBuildArgs).
	BuildArgs map[string]string
	// Platform is the target platform (TARGETPLATFORM…); nil: BuildPlatform.
	Platform *ocispec.Platform
	// BuildPlatform is the platform the build runs on (BUILDPLATFORM…); nil: this machine's.
	BuildPlatform *ocispec.Platform
}

// FindContainerfile returns the Containerfile Load reads: file when it is set, else
// CONTEXT/Containerfile, else CONTEXT/Dockerfile (buildah's order). A missing file wraps
// errdef.ErrNotFound.
func FindContainerfile(contextDir, file string) (string, error) {
	if file != "" {
		if _, err := os.Stat(file); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return "", fmt.Errorf("find containerfile %s: %w", file, errdef.ErrNotFound)
			}
			return "", fmt.Errorf("find containerfile: %w", err)
		}
		return file, nil
	}
	for _, name := range []string{"Containerfile", "Dockerfile"} {
		p := filepath.Join(contextDir, name)
		st, err := os.Stat(p)
		if err == nil && !st.IsDir() {
			return p, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find containerfile: %w", err)
		}
	}
	return "", fmt.Errorf("find containerfile in %s: %w: no Containerfile or Dockerfile (use -f)", contextDir, errdef.ErrNotFound)
}

// Load finds, reads and parses the Containerfile and plans the build of opts.Target. Every
// error in the file is an *Error naming FILE:LINE.
func Load(opts LoadOptions) (*Plan, error) {
	file, err := FindContainerfile(opts.ContextDir, opts.File)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read containerfile: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(&limitReader{f, MaxContainerfileSize + 1}); err != nil {
		return nil, fmt.Errorf("read containerfile %s: %w", file, err)
	}
	if buf.Len() > MaxContainerfileSize {
		return nil, fmt.Errorf("read containerfile %s: %w: over %d bytes", file, errdef.ErrTooLarge, MaxContainerfileSize)
	}
	return Parse(file, buf.Bytes(), opts)
}

type limitReader struct {
	f *os.File
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}

// knownSyntax is what `# syntax=` may name for wharf to build the file itself: the
// docker/dockerfile:1 frontend (any 1.x, labs included), whose language is the one parsed here.
var knownSyntax = regexp.MustCompile(`^(docker\.io/)?docker/dockerfile(-upstream)?:1(\.[0-9]+){0,2}(-labs)?(@sha256:[0-9a-f]{64})?$`)

// Parse plans the build of opts.Target from the Containerfile content dt (named file in
// messages); opts.ContextDir and opts.File are not used.
func Parse(file string, dt []byte, opts LoadOptions) (*Plan, error) {
	if len(bytes.TrimSpace(dt)) == 0 {
		return nil, errAt(file, 0, nil, "the Containerfile is empty")
	}
	p := &Plan{File: file, Source: dt, BuildArgs: copyMap(opts.BuildArgs)}
	if syntax, _, loc, ok := parser.DetectSyntax(dt); ok {
		p.Syntax = syntax
		if !knownSyntax.MatchString(syntax) {
			line := 1
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			p.Warnings = append(p.Warnings, Warning{File: file, Line: line, Message: fmt.Sprintf(
				"syntax %q is not docker/dockerfile:1: wharf cannot run another frontend and parses the file as docker/dockerfile:1", syntax)})
		}
	}
	res, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		return nil, wrapParse(file, 0, err)
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		p.Warnings = append(p.Warnings, Warning{File: file, Line: line, Message: w.Short})
	}
	p.Escape = res.EscapeToken
	p.lex = shell.NewLex(res.EscapeToken)

	build := image.DefaultPlatform()
	if opts.BuildPlatform != nil {
		build = image.NormalizePlatform(*opts.BuildPlatform)
	}
	target := build
	if opts.Platform != nil {
		target = image.NormalizePlatform(*opts.Platform)
	}
	p.BuildPlatform, p.TargetPlatform = build, target

	// Split the AST into the meta ARGs and the stages, keeping each instruction's node (a step
	// is re-parsed from its node each time it is expanded, so the plan is never mutated).
	var metaArgs []*instructions.ArgCommand
	var metaLines []int
	for _, n := range res.AST.Children {
		v, err := instructions.ParseInstruction(n)
		if err != nil {
			return nil, instructionError(file, n, err)
		}
		switch c := v.(type) {
		case *instructions.Stage:
			for _, o := range p.All {
				if c.Name != "" && o.Name == c.Name {
					return nil, errAt(file, n.StartLine, nil, "stage name %q is already used by the stage at line %d", c.Name, o.Line)
				}
			}
			p.All = append(p.All, &Stage{file: file, Index: len(p.All), Name: c.Name, Line: n.StartLine, rawBase: c.BaseName, rawPlatform: c.Platform, Original: strings.TrimSpace(n.Original)})
		case *instructions.ArgCommand:
			if len(p.All) == 0 {
				metaArgs = append(metaArgs, c)
				metaLines = append(metaLines, n.StartLine)
				continue
			}
			p.addStep(n, c)
		case instructions.Command:
			if len(p.All) == 0 {
				return nil, errAt(file, n.StartLine, nil, "%s before the first FROM: only ARG may come before FROM", strings.ToUpper(n.Value))
			}
			p.addStep(n, c)
		default:
			return nil, errAt(file, n.StartLine, nil, "%s is not an instruction", n.Value)
		}
	}
	if len(p.All) == 0 {
		return nil, errAt(file, 0, nil, "no FROM: the Containerfile has no stage to build")
	}

	targetName := opts.Target
	if targetName == "" {
		targetName = p.All[len(p.All)-1].Name
	}
	if err := p.evalMetaArgs(metaArgs, metaLines, targetName); err != nil {
		return nil, err
	}
	if err := p.resolveStages(); err != nil {
		return nil, err
	}
	if err := p.plan(opts.Target); err != nil {
		return nil, err
	}
	p.warnUnusedArgs()
	return p, nil
}

// instructionError is an *Error for an instruction the reference parser refused (an unknown
// instruction or flag, a malformed argument).
func instructionError(file string, n *parser.Node, err error) error {
	var unk *instructions.UnknownInstructionError
	if errors.As(err, &unk) {
		return errAt(file, n.StartLine, nil, "unknown instruction %s", strings.ToUpper(unk.Instruction))
	}
	return wrapParse(file, n.StartLine, err)
}

func (p *Plan) addStep(n *parser.Node, c instructions.Command) {
	s := p.All[len(p.All)-1]
	s.Steps = append(s.Steps, &Step{Stage: s, Index: len(s.Steps), Line: n.StartLine, Name: strings.ToLower(n.Value), Original: strings.TrimSpace(n.Original), node: n, Command: c})
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ParseBuildArgs turns --build-arg flags into values: K=V sets K, a bare K takes K's value
// from lookupEnv (os.LookupEnv when nil) and is left out when the variable is unset, as
// podman and docker do. An empty name is an error.
func ParseBuildArgs(flags []string, lookupEnv func(string) (string, bool)) (map[string]string, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	out := map[string]string{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if k == "" {
			return nil, fmt.Errorf("parse build argument %q: %w: empty name", f, errdef.ErrInvalidArgument)
		}
		if !ok {
			if v, set := lookupEnv(k); set {
				out[k] = v
			}
			continue
		}
		out[k] = v
	}
	return out, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// atoiStage parses a stage index ("0", "12"); ok is false for anything else.
func atoiStage(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
