package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

// wharfRun runs the CLI in-process and returns its exit code, stdout and stderr.
func wharfRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := wharfRun(t, args...)
	if code != 0 {
		t.Fatalf("wharf %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// assertOneLineError checks the error contract: exit code, one line on stderr starting "wharf: ".
func assertOneLineError(t *testing.T, code int, stderr string, wantCode int, wantSubstr string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit code %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "wharf: ") {
		t.Errorf("stderr is not one \"wharf: \" line: %q", stderr)
	}
	if !strings.Contains(stderr, wantSubstr) {
		t.Errorf("stderr %q does not contain %q", stderr, wantSubstr)
	}
}

func TestRootUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown command", []string{"nosuch"}, exitUsage, `unknown command "nosuch"`},
		{"unknown flag", []string{"--nosuch"}, exitUsage, "unknown flag: --nosuch"},
		{"unknown subcommand flag", []string{"version", "--nosuch"}, exitUsage, "unknown flag: --nosuch"},
		{"extra argument", []string{"version", "x"}, exitUsage, "takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := wharfRun(t, tc.args...)
			assertOneLineError(t, code, errs, tc.wantCode, tc.wantErr)
		})
	}
}

func TestRootHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			out := mustRun(t, args...)
			for _, want := range []string{"Exit codes:", "oci:DIR[:TAG|@DIGEST]", "oci-archive:FILE", "version"} {
				if !strings.Contains(out, want) {
					t.Errorf("help does not mention %q", want)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Run("text", func(t *testing.T) {
		out := mustRun(t, "version")
		if !strings.HasPrefix(out, "wharf version ") || !strings.Contains(out, "image-spec: 1.1.1") {
			t.Fatalf("version output %q", out)
		}
	})
	t.Run("json", func(t *testing.T) {
		var v versionInfo
		if err := json.Unmarshal([]byte(mustRun(t, "version", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		if v.Version == "" || v.ImageSpec != imageSpecVersion || v.GoVersion == "" {
			t.Fatalf("version JSON %+v", v)
		}
	})
}

func TestExitCode(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"nil", context.Background(), nil, exitOK},
		{"general", context.Background(), errors.New("boom"), exitFailure},
		{"usage", context.Background(), usageErrorf("bad"), exitUsage},
		{"usage wrapping not found", context.Background(), asUsage(fmt.Errorf("x: %w", errdef.ErrNotFound)), exitUsage},
		{"not found", context.Background(), fmt.Errorf("resolve v1: %w", errdef.ErrNotFound), exitNotFound},
		{"digest mismatch", context.Background(), fmt.Errorf("x: %w", errdef.ErrDigestMismatch), exitFailure},
		{"interrupted", canceled, fmt.Errorf("copy: %w", context.Canceled), exitInterrupted},
		{"canceled without signal", context.Background(), context.Canceled, exitFailure},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.ctx, tc.err); got != tc.want {
				t.Fatalf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb  c\n"); got != "a; b c" {
		t.Fatalf("oneLine = %q", got)
	}
}

func TestDebugPrintsChain(t *testing.T) {
	code, _, errs := wharfRun(t, "--debug", "nosuch")
	if code != exitUsage || !strings.Contains(errs, "wharf: debug: ") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}
