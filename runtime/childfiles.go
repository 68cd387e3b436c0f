package runtime

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// childFiles lays out the descriptors a re-executed runtime child (a container's init, or an
// exec'd process) inherits from fd 3 on, in the order both sides agree on: the passed fds
// (LISTEN_FDS and --preserve-fds), the child's end of the sync socket, then what the caller
// adds (the exec fifo or the container's mount namespace, the console connection, the
// namespaces the C constructor joins).
type childFiles struct {
	files []*os.File
	// parent is the runtime's end of the sync socket, child the init's: close child once the
	// process is started, so that EOF on parent means the process was executed.
	parent, child *os.File
	syncFd        int
	opened        []*os.File // closed by Close
}

// newChildFiles passes the runtime's descriptors 3 to 3+pass-1 on at the same numbers. Each
// must be one this process was given (checkPassed): a number the caller did not fill is
// refused, never filled with a descriptor of the runtime's own.
func newChildFiles(pass int) (*childFiles, error) {
	cf := &childFiles{}
	for i := 0; i < pass; i++ {
		fd := 3 + i
		if err := checkPassed(fd); err != nil {
			return nil, err
		}
		cf.files = append(cf.files, os.NewFile(uintptr(fd), "preserved"))
	}
	parent, child, err := socketPair()
	if err != nil {
		return nil, err
	}
	cf.parent, cf.child = parent, child
	cf.opened = append(cf.opened, parent, child)
	cf.syncFd = cf.add(child)
	return cf, nil
}

// add passes f to the child and returns the descriptor number it has there.
func (cf *childFiles) add(f *os.File) int {
	cf.files = append(cf.files, f)
	return 2 + len(cf.files)
}

// open opens path and passes it to the child (Close closes it).
func (cf *childFiles) open(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	cf.opened = append(cf.opened, f)
	return cf.add(f), nil
}

// addConsole passes conn, or else a connection dialed to socket, to the child and returns its
// descriptor there; with neither it returns 0 (no console).
func (cf *childFiles) addConsole(conn *os.File, socket string) (int, error) {
	if conn != nil {
		return cf.add(conn), nil
	}
	if socket == "" {
		return 0, nil
	}
	c, err := dialConsole(socket)
	if err != nil {
		return 0, err
	}
	cf.opened = append(cf.opened, c)
	return cf.add(c), nil
}

// Close closes what childFiles opened: both ends of the sync socket, a dialed console and the
// files from open; never the passed fds or files the caller added.
func (cf *childFiles) Close() {
	for _, f := range cf.opened {
		_ = f.Close()
	}
}

// checkPassed refuses to pass on fd unless this process was started with it. A descriptor
// inherited across execve has no close-on-exec flag (one with the flag would have been
// closed), while everything Go opens — the runtime's log file, its state directory's lock,
// the Go runtime's own cgroup files — has it: so a descriptor with the flag is the runtime's
// own, whatever number it landed on.
func checkPassed(fd int) error {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return fmt.Errorf("pass descriptor %d to the container: %w: %w", fd, err, errdef.ErrInvalidArgument)
	}
	if flags&unix.FD_CLOEXEC != 0 {
		return fmt.Errorf("pass descriptor %d to the container: the runtime was not given it (it is one of its own): %w", fd, errdef.ErrInvalidArgument)
	}
	return nil
}
