// Command regbench is the load generator of bench/registry.sh: it drives OCI registries over
// plain HTTP with the same phases (one big blob pushed and pulled by 1 and 16 clients, many small
// images pushed and pulled by 1 and 16 clients, blob HEADs) and reports throughput, the server's
// CPU time and peak RSS, side by side.
//
//	regbench gen -dir DIR [-size-mb 1024] [-small-n 1000] [-small-kb 100]
//	    writes the test data once (DIR/meta.json last: its presence means complete)
//	regbench run -dir DIR -target NAME=URL[,PID] [-target …] [-rep N] [-c 16] [-verify] [-out FILE]
//	    runs every phase against each target in turn, the order rotated by the repetition
//	    number, one JSON row per target and phase appended to FILE (default stdout)
//	regbench report -ut NAME -peer NAME FILE...
//	    prints the table of medians over repetitions and, as its last line, the key=value
//	    summary of NAME against the peer (ratios above 1: NAME is faster)
//
// The phases take targets as a list, so a third registry (a reference server, say) is one
// more -target; report compares -ut with -peer and shows every target in its table.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: regbench gen|run|report [flags]   (regbench CMD -h for the flags)

  gen     write the test data (one big blob in 16 slices, 2 x small-n small layers)
  run     run the phases against targets, one JSON row per target and phase
  report  medians, ratios and peaks of the rows of one or more runs
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "gen":
		err = genCmd(args)
	case "run":
		err = runCmd(args, os.Stdout)
	case "report":
		err = reportCmd(args, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "regbench:", err)
		os.Exit(1)
	}
}

func genCmd(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	dir := fs.String("dir", "", "output directory (required)")
	sizeMB := fs.Int("size-mb", 1024, "size of the big blob, MiB")
	smallN := fs.Int("small-n", 1000, "small images per push phase")
	smallKB := fs.Int("small-kb", 100, "size of each small layer, KiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		return fmt.Errorf("gen: -dir is required and takes no arguments")
	}
	d, made, err := generate(*dir, *sizeMB, *smallN, *smallKB)
	if err != nil {
		return err
	}
	verb := "reused"
	if made {
		verb = "generated"
	}
	fmt.Fprintf(os.Stderr, "regbench: %s %s: %d MiB blob in %d slices, 2 x %d small layers of %d KiB\n",
		verb, *dir, d.BigSize>>20, len(d.Slices), len(d.Small)/2, d.SmallSize>>10)
	return nil
}

func runCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	dir := fs.String("dir", "", "test data directory, made by regbench gen (required)")
	var targets targetList
	fs.Var(&targets, "target", "NAME=URL[,PID]: a registry to drive (repeat it; PID: the server process to sample)")
	rep := fs.Int("rep", 1, "repetition number: recorded in the rows and rotates the targets' order")
	clients := fs.Int("c", 16, "clients of the concurrent phases")
	verify := fs.Bool("verify", false, "hash every pulled big blob (small ones always are)")
	out := fs.String("out", "", "append the rows to this file (default stdout)")
	prefix := fs.String("prefix", "regbench", "repository name prefix (the repetition is appended)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || len(targets) == 0 || *clients < 1 || *rep < 1 || fs.NArg() != 0 {
		return fmt.Errorf("run: -dir and at least one -target are required; -c and -rep are positive")
	}
	d, err := loadDataset(*dir)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("open rows file: %w", err)
		}
		defer f.Close()
		w = f
	}
	cfg := runConfig{data: d, clients: *clients, verify: *verify, rep: *rep,
		prefix: fmt.Sprintf("%s/r%d", *prefix, *rep), settle: settleTime, log: os.Stderr}
	return runAll(cfg, targets.rotated(*rep), w)
}

func reportCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	ut := fs.String("ut", "", "the target under test (required)")
	peer := fs.String("peer", "", "the target it is compared with in the summary line (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ut == "" || *peer == "" || fs.NArg() == 0 {
		return fmt.Errorf("report: -ut, -peer and at least one rows file are required")
	}
	rows, err := readRows(fs.Args())
	if err != nil {
		return err
	}
	return report(stdout, rows, *ut, *peer)
}
