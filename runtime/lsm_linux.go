package runtime

import (
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/wharfoci/wharf/errdef"
)

// Linux security modules: process.apparmorProfile and process.selinuxLabel are applied to the
// process at its execve by writing the thread's attr/exec, as runc does. A profile or label
// asked for on a host without that module is an error, never ignored (runc refuses too).

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func selinuxEnabled() bool {
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

// validateLSM refuses labels the host cannot apply.
func validateLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" && !apparmorEnabled() {
		return fmt.Errorf("process.apparmorProfile %q: %w: AppArmor is not enabled on this host", p.ApparmorProfile, errdef.ErrUnsupported)
	}
	if p.SelinuxLabel != "" && !selinuxEnabled() {
		return fmt.Errorf("process.selinuxLabel %q: %w: SELinux is not enabled on this host", p.SelinuxLabel, errdef.ErrUnsupported)
	}
	return nil
}

// applyLSM sets the AppArmor profile and SELinux label the calling thread's next execve takes.
func applyLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		err := os.WriteFile("/proc/thread-self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile), 0)
		if os.IsNotExist(err) {
			err = os.WriteFile("/proc/thread-self/attr/exec", []byte("exec "+p.ApparmorProfile), 0)
		}
		if err != nil {
			return fmt.Errorf("apply AppArmor profile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := os.WriteFile("/proc/thread-self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return fmt.Errorf("apply SELinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}
