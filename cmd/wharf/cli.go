package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Argument validators that report a usage error (exit 2).

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) != 0 {
		return usageErrorf("%s takes no arguments, got %d (see \"%s --help\")", cmd.CommandPath(), len(args), cmd.CommandPath())
	}
	return nil
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageErrorf("%s needs %d argument%s, got %d (usage: %s)", cmd.CommandPath(), n, plural(n), len(args), cmd.UseLine())
		}
		return nil
	}
}

func rangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			return usageErrorf("%s needs %d to %d arguments, got %d (usage: %s)", cmd.CommandPath(), min, max, len(args), cmd.UseLine())
		}
		return nil
	}
}

func minArgs(min int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			return usageErrorf("%s needs at least %d argument%s, got %d (usage: %s)", cmd.CommandPath(), min, plural(min), len(args), cmd.UseLine())
		}
		return nil
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// parseKeyValues reads the values of a repeatable KEY=VALUE flag into a map (nil for none; a
// later KEY wins). A value without "=" or with an empty KEY is a usage error.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	var m map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageErrorf("%s %q: want KEY=VALUE", flag, kv)
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// infof prints an informational line on stderr unless --quiet.
func (o *globalOptions) infof(cmd *cobra.Command, format string, a ...any) {
	if o.Quiet {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), format+"\n", a...)
}

// debugf prints a diagnostic line on stderr with --debug.
func (o *globalOptions) debugf(cmd *cobra.Command, format string, a ...any) {
	if !o.Debug {
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "wharf: debug: "+format+"\n", a...)
}

// isTerminal reports whether w is a terminal (then progress may redraw a line in place).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
