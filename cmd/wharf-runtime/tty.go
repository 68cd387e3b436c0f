package main

import (
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/wharfoci/wharf/runtime"
)

// ttyRelay puts a container's pty on the caller's terminal (run/exec with a terminal and no
// --console-socket): it receives the pty master, makes the caller's terminal raw and copies both
// ways.
type ttyRelay struct {
	parent   *net.UnixConn
	child    *os.File
	master   *os.File
	oldState *term.State
	out      sync.WaitGroup
}

func newTTYRelay() (*ttyRelay, error) {
	p, c, err := runtime.ConsolePair()
	if err != nil {
		return nil, err
	}
	return &ttyRelay{parent: p, child: c}, nil
}

func (t *ttyRelay) start() error {
	m, err := runtime.RecvFd(t.parent)
	if err != nil {
		return err
	}
	t.master = m
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			t.oldState = st
		}
	}
	t.resize()
	go func() { _, _ = io.Copy(m, os.Stdin) }()
	t.out.Add(1)
	go func() {
		defer t.out.Done()
		_, _ = io.Copy(os.Stdout, m)
	}()
	return nil
}

func (t *ttyRelay) resize() {
	if t.master == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// drain waits for the output still buffered in the pty (the copy ends with EIO once every
// slave is closed); a background process that keeps the slave open is not waited for long.
func (t *ttyRelay) drain() {
	done := make(chan struct{})
	go func() { t.out.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
	}
}

func (t *ttyRelay) close() {
	if t.oldState != nil {
		_ = term.Restore(int(os.Stdin.Fd()), t.oldState)
	}
	t.parent.Close()
	if t.master != nil {
		t.master.Close()
	}
}
