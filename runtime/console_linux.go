package runtime

import (
	"fmt"
	"net"
	"os"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// openPty opens a new pseudo-terminal pair from /dev/ptmx (the container's devpts when called
// after pivot_root, or after joining the container's mount namespace).
func openPty() (master *os.File, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the peer without a path lookup (Linux ≥ 4.13)
	fd, _, e := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e == 0 {
		n, _ := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
		return m, os.NewFile(uintptr(fd), "/dev/pts/"+strconv.Itoa(n)), nil
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("get pty number: %w", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pty slave: %w", err)
	}
	return m, s, nil
}

// sendFd sends f over the unix socket sock with SCM_RIGHTS (the data is f's name, as runc).
func sendFd(sock *os.File, f *os.File) error {
	oob := unix.UnixRights(int(f.Fd()))
	name := []byte(f.Name())
	if len(name) == 0 {
		name = []byte("/dev/ptmx")
	}
	if err := unix.Sendmsg(int(sock.Fd()), name, oob, nil, 0); err != nil {
		return fmt.Errorf("send pty master over the console socket: %w", err)
	}
	return nil
}

// RecvFd receives one descriptor sent with SCM_RIGHTS on conn.
func RecvFd(conn *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receive pty master: no descriptor in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("receive pty master: no descriptor in the message")
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// setupTerminal makes a pty, sends its master over consoleSock, and makes the slave the calling
// process's stdio and controlling terminal (after setsid). When console is true the slave is
// also bind-mounted on /dev/console.
func setupTerminal(consoleSock *os.File, size *specs.Box, console bool) error {
	master, slave, err := openPty()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
	if console {
		if f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o600); err == nil {
			f.Close()
			if err := unix.Mount(slave.Name(), "/dev/console", "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s on /dev/console: %w", slave.Name(), err)
			}
		}
	}
	if err := sendFd(consoleSock, master); err != nil {
		return err
	}
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(int(slave.Fd()), i, 0); err != nil {
			return fmt.Errorf("dup pty slave to fd %d: %w", i, err)
		}
	}
	if _, err := unix.Setsid(); err != nil && err != unix.EPERM {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

// ConsolePair returns a connected pair of unix sockets: give child as ConsoleConn to Create or
// Exec, then receive the pty master from parent with RecvFd.
func ConsolePair() (parent *net.UnixConn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("create console socket pair: %w", err)
	}
	pf := os.NewFile(uintptr(fds[0]), "console-parent")
	defer pf.Close()
	c, err := net.FileConn(pf)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("create console socket pair: %w", err)
	}
	return c.(*net.UnixConn), os.NewFile(uintptr(fds[1]), "console-child"), nil
}
