package build

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/image"
)

// PredefinedArgs are the ARGs BuildKit defines from the platforms (and the target stage):
// usable in FROM lines as they are, and in a stage after `ARG NAME`. A --build-arg of the
// same name overrides one.
var PredefinedArgs = []string{
	"BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
	"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT",
	"TARGETSTAGE",
}

// ProxyArgs are the build args a RUN sees without an ARG declaring them (and that never enter
// the image's config or history), in upper and lower case.
var ProxyArgs = []string{"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"}

// IsProxyArg reports whether name is one of ProxyArgs, in either case.
func IsProxyArg(name string) bool {
	for _, p := range ProxyArgs {
		if strings.EqualFold(p, name) && (name == p || name == strings.ToLower(p)) {
			return true
		}
	}
	return false
}

func predefinedValues(build, target ocispec.Platform, stage string) [][2]string {
	if stage == "" {
		stage = "default"
	}
	return [][2]string{
		{"BUILDPLATFORM", image.FormatPlatform(ocispec.Platform{OS: build.OS, Architecture: build.Architecture, Variant: build.Variant})},
		{"BUILDOS", build.OS},
		{"BUILDOSVERSION", build.OSVersion},
		{"BUILDARCH", build.Architecture},
		{"BUILDVARIANT", build.Variant},
		{"TARGETPLATFORM", image.FormatPlatform(target)},
		{"TARGETOS", target.OS},
		{"TARGETOSVERSION", target.OSVersion},
		{"TARGETARCH", target.Architecture},
		{"TARGETVARIANT", target.Variant},
		{"TARGETSTAGE", stage},
	}
}

// evalMetaArgs computes the global scope: the predefined ARGs (overridden by build args of
// the same name), then each ARG before the first FROM, its value the build arg when one is
// given, else its default expanded in the scope so far.
func (p *Plan) evalMetaArgs(args []*instructions.ArgCommand, lines []int, targetStage string) error {
	var env []string
	for _, kv := range predefinedValues(p.BuildPlatform, p.TargetPlatform, targetStage) {
		v := kv[1]
		if ov, ok := p.BuildArgs[kv[0]]; ok {
			v = ov
		}
		env = setEnv(env, kv[0], v)
	}
	for i, c := range args {
		for _, kv := range c.Args {
			if v, ok := p.BuildArgs[kv.Key]; ok {
				env = setEnv(env, kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := p.lex.ProcessWord(*kv.Value, shell.EnvsFromSlice(env))
			if err != nil {
				return p.errAt(lines[i], "expand ARG %s: %v", kv.Key, err)
			}
			env = setEnv(env, kv.Key, v)
		}
	}
	p.MetaArgs = env
	p.metaDeclared = map[string]bool{}
	for _, c := range args {
		for _, kv := range c.Args {
			p.metaDeclared[kv.Key] = true
		}
	}
	return nil
}

// warnUnusedArgs warns of each build arg that no ARG of the planned stages (or before the
// first FROM) declares, as buildah does ("not consumed"); predefined, proxy and
// SOURCE_DATE_EPOCH args are always consumed.
func (p *Plan) warnUnusedArgs() {
	used := map[string]bool{"SOURCE_DATE_EPOCH": true}
	for k := range p.metaDeclared {
		used[k] = true
	}
	for _, k := range PredefinedArgs {
		used[k] = true
	}
	for _, s := range p.Stages {
		for _, st := range s.Steps {
			if a, ok := st.Command.(*instructions.ArgCommand); ok {
				for _, kv := range a.Args {
					used[kv.Key] = true
				}
			}
		}
	}
	for _, k := range sortedKeys(p.BuildArgs) {
		if !used[k] && !IsProxyArg(k) {
			p.Warnings = append(p.Warnings, Warning{File: p.File, Message: fmt.Sprintf("build argument %s was not consumed: no ARG %s in the stages built", k, k)})
		}
	}
}

// ProxyEnv is what RUN adds to its environment from the proxy build args (KEY=VALUE, sorted).
func (p *Plan) ProxyEnv() []string {
	var out []string
	for _, k := range sortedKeys(p.BuildArgs) {
		if IsProxyArg(k) {
			out = append(out, k+"="+p.BuildArgs[k])
		}
	}
	return out
}

// SourceDateEpoch is the SOURCE_DATE_EPOCH build arg (or meta ARG) as a time; nil when unset
// or empty. A value that is not a decimal number of seconds is an error.
func (p *Plan) SourceDateEpoch() (*time.Time, error) {
	v, ok := p.BuildArgs["SOURCE_DATE_EPOCH"]
	if !ok {
		v, ok = lookupEnv(p.MetaArgs, "SOURCE_DATE_EPOCH")
	}
	if !ok || v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("parse SOURCE_DATE_EPOCH %q: not a number of seconds", v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// setEnv sets key in a KEY=VALUE list, replacing an existing entry in place (the order of
// first definition is kept, as BuildKit and the image config do).
func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if shell.EqualEnvKeys(k, key) {
			out := append([]string(nil), env...)
			out[i] = key + "=" + value
			return out
		}
	}
	return append(append([]string(nil), env...), key+"="+value)
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(env[i], "=")
		if shell.EqualEnvKeys(k, key) {
			return v, true
		}
	}
	return "", false
}
