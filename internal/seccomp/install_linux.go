package seccomp

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const seccompSetModeFilter = 1 // SECCOMP_SET_MODE_FILTER

// Install loads the filter on the calling thread, which must be the one that execs (lock it
// to its goroutine). It needs no_new_privs or CAP_SYS_ADMIN; the filter applies to every
// system call the thread makes from then on, including the rest of the caller's own.
func (f *Filter) Install() error {
	if len(f.Program) == 0 {
		return fmt.Errorf("load seccomp filter: empty program")
	}
	prog := unix.SockFprog{Len: uint16(len(f.Program)), Filter: &f.Program[0]}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, seccompSetModeFilter, f.Flags, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return fmt.Errorf("load seccomp filter: %w", e)
	}
	return nil
}
