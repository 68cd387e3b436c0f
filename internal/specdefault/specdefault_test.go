package specdefault

import "testing"

// TestSpecIsFresh: callers adapt the default in place, so each call must return its own copy.
func TestSpecIsFresh(t *testing.T) {
	a, b := Spec(), Spec()
	a.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	a.Mounts[0].Destination = "/x"
	a.Linux.MaskedPaths[0] = "/y"
	if b.Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" || b.Mounts[0].Destination != "/proc" || b.Linux.MaskedPaths[0] != "/proc/acpi" {
		t.Fatal("Spec returned shared state")
	}
	if a.Process.Capabilities.Effective[0] != "CAP_AUDIT_WRITE" {
		t.Fatal("capability sets share one slice")
	}
	if !b.Root.Readonly || !b.Process.Terminal || b.Process.Cwd != "/" {
		t.Fatalf("not runc's default: root %+v terminal %v", b.Root, b.Process.Terminal)
	}
}

func TestCapabilityName(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"full", "CAP_NET_ADMIN", "CAP_NET_ADMIN"},
		{"lower case", "net_admin", "CAP_NET_ADMIN"},
		{"mixed, with prefix", "cap_Sys_Time", "CAP_SYS_TIME"},
		{"all", "all", "CAP_ALL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CapabilityName(tc.in); got != tc.want {
				t.Fatalf("CapabilityName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
