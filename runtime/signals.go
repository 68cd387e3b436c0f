package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/wharfoci/wharf/errdef"
)

// ParseSignal accepts "KILL", "SIGKILL", "kill", "9" and "SIGRTMIN+3".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("parse signal %q: %w", s, errdef.ErrInvalidArgument)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	for _, base := range []struct {
		name string
		num  int
	}{{"SIGRTMIN", 34}, {"SIGRTMAX", 64}} {
		if rest, ok := strings.CutPrefix(name, base.name); ok {
			off := 0
			if rest != "" {
				n, err := strconv.Atoi(rest)
				if err != nil {
					break
				}
				off = n
			}
			if n := base.num + off; n >= 34 && n <= 64 {
				return unix.Signal(n), nil
			}
		}
	}
	return 0, fmt.Errorf("parse signal %q: unknown signal: %w", s, errdef.ErrInvalidArgument)
}
