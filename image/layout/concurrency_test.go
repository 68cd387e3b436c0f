package layout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

const (
	helperEnv = "WHARF_LAYOUT_TAGGER" // "dir prefix n": run as a tagging process
	perWorker = 15
)

// TestMain lets the test binary act as a tagging process for TestConcurrentTaggers.
func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		var dir, prefix string
		var n int
		if _, err := fmt.Sscan(spec, &dir, &prefix, &n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := tagMany(dir, prefix, n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tagMany opens the layout, pushes one image and tags it n times as prefix-i.
func tagMany(dir, prefix string, n int) error {
	ctx := context.Background()
	l, err := Open(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	var d = testImage(&panicTB{}, l, prefix)
	for i := range n {
		if err := l.Tag(ctx, d, prefix+"-"+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return nil
}

func TestConcurrentTaggers(t *testing.T) {
	const goroutines, processes = 6, 4
	l := newLayout(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines+processes)
	for p := range processes {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s proc%d %d", helperEnv, l.Root(), p, perWorker))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("process: %v: %s", err, out)
			}
		}()
	}
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := tagMany(l.Root(), fmt.Sprintf("gor%d", g), perWorker); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range list {
		names[e.Name] = true
	}
	if want := (goroutines + processes) * perWorker; len(list) != want || len(names) != want {
		t.Errorf("index.json has %d entries (%d names), want %d", len(list), len(names), want)
	}
	for p := range processes {
		for i := range perWorker {
			if n := fmt.Sprintf("proc%d-%d", p, i); !names[n] {
				t.Errorf("tag %s lost", n)
			}
		}
	}
	for g := range goroutines {
		for i := range perWorker {
			if n := fmt.Sprintf("gor%d-%d", g, i); !names[n] {
				t.Errorf("tag %s lost", n)
			}
		}
	}
}
