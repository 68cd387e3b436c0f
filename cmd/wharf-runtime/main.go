// Command wharf-runtime is a runc-compatible OCI runtime: the same commands, flags and output
// formats, so that containerd's runc shim and podman's conmon can drive it. Each command is a
// thin layer over package runtime.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/runtime"
)

func init() {
	// The re-executed init must keep the main goroutine on the main thread: every namespace,
	// credential and capability change is per-thread, and that thread execs the container.
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		goruntime.LockOSThread()
	}
}

type globalOptions struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
	logFile       *os.File
	// stdout and stderr are where commands print and errors are logged without --log.
	stdout, stderr io.Writer
}

func (g *globalOptions) close() {
	if g.logFile != nil {
		g.logFile.Close()
	}
}

func (g *globalOptions) runtime() *runtime.Runtime {
	rt := &runtime.Runtime{Root: g.root, SystemdCgroup: g.systemdCgroup,
		Warnf: func(format string, a ...any) { g.logf("warning", format, a...) }}
	if g.debug {
		rt.Debugf = func(format string, a ...any) { g.logf("debug", format, a...) }
	}
	return rt
}

// logf writes one log line in runc's formats: JSON ({"level","msg","time"}) or logrus text.
func (g *globalOptions) logf(level, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	now := time.Now().UTC().Format(time.RFC3339)
	var line string
	if g.logFormat == "json" {
		b, _ := json.Marshal(struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Time  string `json:"time"`
		}{level, msg, now})
		line = string(b)
	} else {
		line = fmt.Sprintf("time=%q level=%s msg=%q", now, level, msg)
	}
	var w io.Writer = g.stderr
	if g.logFile != nil {
		w = g.logFile
	}
	fmt.Fprintln(w, line)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg && os.Getenv("_WHARF_INIT_SYNC") != "" {
		runtime.Init()
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process's exit status: 0, the container
// process's status for run and exec (exitError), else 1 with the error reported as runc does —
// one log line (text, or JSON with --log-format json) on stderr, or in the --log file with a
// "wharf-runtime CMD failed: ERROR" line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	return runWith(&globalOptions{stdout: stdout, stderr: stderr}, args)
}

// runWith is run with the global options g (their writers set) filled by the command line.
func runWith(g *globalOptions, args []string) int {
	defer g.close()
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	cmd, err := root.ExecuteC()
	code, err := exitStatus(err)
	if err == nil {
		return code
	}
	name := "wharf-runtime"
	if cmd != root {
		name += " " + cmd.Name()
	}
	g.logf("error", "%s", err)
	if g.logFile != nil {
		fmt.Fprintf(g.stderr, "%s failed: %s\n", name, err)
	}
	return code
}

// exitStatus maps what a command returned to the exit status and the error to report, if any:
// nil is 0; an exitError is its code (reported only when it carries an error); anything else
// is 1.
func exitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code, ee.err
	}
	return 1, err
}

// exitError carries a process exit code (run, exec) with an optional error to report.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:           "wharf-runtime",
		Short:         "an OCI runtime (runtime-spec " + runtimeSpecVersion() + "), compatible with runc's command line",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       runtime.Version,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.log != "" {
				f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
				if err != nil {
					return fmt.Errorf("open log file %s: %w", g.log, err)
				}
				g.logFile = f
			}
			if g.logFormat != "text" && g.logFormat != "json" {
				return fmt.Errorf("invalid --log-format %q: want text or json", g.logFormat)
			}
			return nil
		},
	}
	root.SetVersionTemplate(versionText())
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", runtime.DefaultRoot, "root directory for storage of container state")
	pf.StringVar(&g.log, "log", "", "log file (default stderr)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "enable debug logging")
	pf.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is slice:prefix:name (driven through cgroupfs)")
	pf.StringVar(&g.rootless, "rootless", "auto", "accepted for runc compatibility")
	pf.StringVar(&g.criu, "criu", "criu", "accepted for runc compatibility")
	pf.Lookup("rootless").NoOptDefVal = "true"
	root.AddCommand(newCreateCmd(g), newStartCmd(g), newRunCmd(g), newStateCmd(g), newKillCmd(g),
		newDeleteCmd(g), newListCmd(g), newExecCmd(g), newPsCmd(g), newPauseCmd(g), newResumeCmd(g),
		newSpecCmd(g), newFeaturesCmd(g), newUpdateCmd(g), newEventsCmd(g))
	return root
}

func versionText() string {
	return "wharf-runtime version " + runtime.Version + "\ncommit: " + commit() + "\nspec: " + runtimeSpecVersion() + "\n"
}

func commit() string {
	if c := strings.TrimSpace(version); c != "" {
		return c
	}
	return "unknown"
}

// version is the source revision, set by `make build` (-ldflags "-X main.version=…").
var version = ""
