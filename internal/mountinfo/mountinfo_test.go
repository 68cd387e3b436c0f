package mountinfo

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `36 35 98:0 /mnt1 /mnt/a\040b rw,noatime master:1 - ext3 /dev/root rw,errors=continue
garbage line
40 36 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
`
	es, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("got %d entries, want 2: %+v", len(es), es)
	}
	want := Entry{ID: 36, Parent: 35, Root: "/mnt1", Point: "/mnt/a b", Options: "rw,noatime", FSType: "ext3",
		Source: "/dev/root", SuperOptions: "rw,errors=continue"}
	if es[0] != want {
		t.Errorf("got %+v, want %+v", es[0], want)
	}
	if es[1].FSType != "cgroup" || es[1].SuperOptions != "rw,cpu,cpuacct" {
		t.Errorf("second entry %+v", es[1])
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `x\012y`: "x\ny", `tail\04`: `tail\04`, `plain`: "plain", `\\`: `\\`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSelf(t *testing.T) {
	es, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Point == "/" {
			return
		}
	}
	t.Errorf("no mount at / among %d", len(es))
}
