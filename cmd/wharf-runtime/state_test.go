package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestState: runtime.md's state plus runc's rootfs, created and owner, indented as runc
// prints it; a stopped container has pid 0.
func TestState(t *testing.T) {
	root := t.TempDir()
	init := fakeInit(t)
	pid := init.Process.Pid
	container(t, root, "run1", pid, false, nil)
	container(t, root, "new1", pid, true, nil)
	container(t, root, "gone", 0, false, nil)
	for _, tc := range []struct {
		id, status string
		pid        int
	}{{"run1", "running", pid}, {"new1", "created", pid}, {"gone", "stopped", 0}} {
		t.Run(tc.id, func(t *testing.T) {
			r := wr("--root", root, "state", tc.id)
			if r.code != 0 {
				t.Fatalf("%+v", r)
			}
			want := `{
  "ociVersion": "` + specs.Version + `",
  "id": "` + tc.id + `",
  "pid": ` + strconv.Itoa(tc.pid) + `,
  "status": "` + tc.status + `",
  "bundle": "/bundles/` + tc.id + `",
  "rootfs": "/bundles/` + tc.id + `/rootfs",
  "created": "2024-05-06T07:08:09Z",
  "annotations": {
    "org.example": "` + tc.id + `"
  },
  "owner": "root"
}
`
			if r.stdout != want {
				t.Fatalf("state:\n%s\nwant\n%s", r.stdout, want)
			}
		})
	}
}

// TestList: the table (runc's columns), JSON and -q, sorted by id; an empty or missing root
// lists nothing.
func TestList(t *testing.T) {
	root := t.TempDir()
	pid := fakeInit(t).Process.Pid
	container(t, root, "b-run", pid, false, nil)
	container(t, root, "a-new", pid, true, nil)
	container(t, root, "c-gone", 0, false, nil)
	if err := os.Mkdir(filepath.Join(root, ".creating:x:1"), 0o700); err != nil { // not a container
		t.Fatal(err)
	}
	p := strconv.Itoa(pid)
	t.Run("table", func(t *testing.T) {
		r := wr("--root", root, "list")
		want := regexp.MustCompile(`^ID +PID +STATUS +BUNDLE +CREATED +OWNER\n` +
			`a-new +` + p + ` +created +/bundles/a-new +2024-05-06T07:08:09Z +root\n` +
			`b-run +` + p + ` +running +/bundles/b-run +2024-05-06T07:08:09Z +root\n` +
			`c-gone +0 +stopped +/bundles/c-gone +2024-05-06T07:08:09Z +root\n$`)
		if r.code != 0 || !want.MatchString(r.stdout) {
			t.Fatalf("list:\n%s", r.stdout)
		}
	})
	t.Run("json", func(t *testing.T) {
		r := wr("--root", root, "list", "--format", "json")
		var states []struct {
			ID, Status string
			Pid        int
		}
		if err := json.Unmarshal([]byte(r.stdout), &states); err != nil || r.code != 0 || len(states) != 3 {
			t.Fatalf("list -f json: %v: %+v", err, r)
		}
		if states[0].ID != "a-new" || states[1].Status != "running" || states[1].Pid != pid || states[2].Pid != 0 {
			t.Fatalf("list -f json: %+v", states)
		}
	})
	t.Run("quiet", func(t *testing.T) {
		if r := wr("--root", root, "list", "-q"); r.stdout != "a-new\nb-run\nc-gone\n" {
			t.Fatalf("list -q: %q", r.stdout)
		}
	})
	t.Run("empty root", func(t *testing.T) {
		empty := t.TempDir()
		if r := wr("--root", empty, "list", "-f", "json"); r.code != 0 || r.stdout != "[]\n" {
			t.Fatalf("list -f json: %+v", r)
		}
		if r := wr("--root", filepath.Join(empty, "missing"), "list"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("list of a missing root: %+v", r)
		}
	})
}

// TestKillAndDelete: signals reach the init; a running container is deleted only with
// --force; delete removes the state.
func TestKillAndDelete(t *testing.T) {
	root := t.TempDir()
	init := fakeInit(t)
	container(t, root, "k", init.Process.Pid, false, nil)
	if r := wr("--root", root, "delete", "k"); r.code != 1 || !strings.Contains(r.stderr, "cannot delete container k that is not stopped: running") {
		t.Fatalf("delete of a running container: %+v", r)
	}
	if r := wr("--root", root, "kill", "k", "9"); r.code != 0 {
		t.Fatalf("kill: %+v", r)
	}
	if _, err := init.Process.Wait(); err != nil {
		t.Fatal(err)
	}
	if r := wr("--root", root, "state", "k"); !strings.Contains(r.stdout, `"status": "stopped"`) {
		t.Fatalf("state after kill: %+v", r)
	}
	if r := wr("--root", root, "kill", "k"); r.code != 1 || !strings.Contains(r.stderr, "container not running") {
		t.Fatalf("kill of a stopped container: %+v", r)
	}
	if r := wr("--root", root, "delete", "k"); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(root, "k")); !os.IsNotExist(err) {
		t.Fatalf("state left: %v", err)
	}

	forced := fakeInit(t)
	container(t, root, "f", forced.Process.Pid, false, nil)
	if r := wr("--root", root, "delete", "--force", "f"); r.code != 0 {
		t.Fatalf("delete --force: %+v", r)
	}
	if ps, _ := forced.Process.Wait(); ps == nil || !ps.Sys().(syscall.WaitStatus).Signaled() {
		t.Fatalf("the init survived delete --force: %v", ps)
	}
	if r := wr("--root", root, "state", "f"); r.code != 1 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("state after delete: %+v", r)
	}
}

// cgroupTree is a container's cgroups as files a kernel would have, for update, events,
// pause and ps without a kernel behind them.
func cgroupTree(t *testing.T, pid int) map[string]string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"memory/c/memory.limit_in_bytes": "9223372036854771712\n", "memory/c/memory.usage_in_bytes": "4096\n",
		"memory/c/memory.stat": "cache 8192\n", "memory/c/cgroup.procs": strconv.Itoa(pid) + "\n",
		"pids/c/pids.max": "max\n", "pids/c/pids.current": "1\n", "pids/c/cgroup.procs": strconv.Itoa(pid) + "\n",
		"cpu/c/cpu.shares": "1024\n", "cpu/c/cpu.cfs_quota_us": "-1\n", "cpu/c/cpu.cfs_period_us": "100000\n",
		"freezer/c/freezer.state": "THAWED\n", "freezer/c/cgroup.procs": strconv.Itoa(pid) + "\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"memory": root + "/memory/c", "pids": root + "/pids/c", "cpu": root + "/cpu/c", "freezer": root + "/freezer/c"}
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupCommands: update, events --stats, ps, pause and resume through a container's
// cgroup files.
func TestCgroupCommands(t *testing.T) {
	root := t.TempDir()
	pid := fakeInit(t).Process.Pid
	cg := cgroupTree(t, pid)
	container(t, root, "cg", pid, false, cg)
	rt := func(args ...string) result { return wr(append([]string{"--root", root}, args...)...) }

	t.Run("update flags", func(t *testing.T) {
		if r := rt("update", "--memory", "1048576", "--pids-limit", "20", "--cpu-share", "512", "--cpu-quota", "50000", "cg"); r.code != 0 {
			t.Fatalf("%+v", r)
		}
		for f, want := range map[string]string{cg["memory"] + "/memory.limit_in_bytes": "1048576", cg["pids"] + "/pids.max": "20",
			cg["cpu"] + "/cpu.shares": "512", cg["cpu"] + "/cpu.cfs_quota_us": "50000", cg["cpu"] + "/cpu.cfs_period_us": "100000"} {
			if got := readTrim(t, f); got != want {
				t.Errorf("%s = %q, want %q", f, got, want)
			}
		}
		// the new limits are the container's config from now on
		b, _ := os.ReadFile(filepath.Join(root, "cg", "state.json"))
		var st struct{ Config specs.Spec }
		if err := json.Unmarshal(b, &st); err != nil || *st.Config.Linux.Resources.Memory.Limit != 1048576 || *st.Config.Linux.Resources.Pids.Limit != 20 {
			t.Fatalf("state.json: %v %s", err, b)
		}
	})
	t.Run("update resources file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "r.json")
		if err := os.WriteFile(p, []byte(`{"pids":{"limit":7}}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if r := rt("update", "-r", p, "cg"); r.code != 0 || readTrim(t, cg["pids"]+"/pids.max") != "7" {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("events --stats", func(t *testing.T) {
		r := rt("events", "--stats", "cg")
		var e struct {
			Type, ID string
			Data     struct {
				Memory struct {
					Cache uint64
					Usage struct{ Limit, Usage uint64 }
				}
				Pids struct{ Current uint64 }
			}
		}
		if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("events --stats: %v: %+v", err, r)
		}
		if e.Type != "stats" || e.ID != "cg" || e.Data.Memory.Cache != 8192 || e.Data.Memory.Usage.Usage != 4096 || e.Data.Pids.Current != 1 {
			t.Fatalf("events --stats: %+v", e)
		}
	})
	t.Run("events interval", func(t *testing.T) {
		if r := rt("events", "--interval", "0s", "cg"); r.code != 1 || !strings.Contains(r.stderr, "events: interval 0s: invalid argument") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("ps", func(t *testing.T) {
		if r := rt("ps", "--format", "json", "cg"); r.code != 0 || r.stdout != "["+strconv.Itoa(pid)+"]\n" {
			t.Fatalf("ps -f json: %+v", r)
		}
		if r := rt("ps", "-f", "yaml", "cg"); r.code != 1 || !strings.Contains(r.stderr, `invalid --format \"yaml\"`) {
			t.Fatalf("ps -f yaml: %+v", r)
		}
		r := rt("ps", "cg", "-o", "pid,comm")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[1], strconv.Itoa(pid)+" sleep") {
			t.Fatalf("ps -o pid,comm: %+v", r)
		}
	})
	t.Run("pause and resume", func(t *testing.T) {
		if r := rt("resume", "cg"); r.code != 1 || !strings.Contains(r.stderr, "invalid state transition from running to running") {
			t.Fatalf("resume of a running container: %+v", r)
		}
		if r := rt("pause", "cg"); r.code != 0 || readTrim(t, cg["freezer"]+"/freezer.state") != "FROZEN" {
			t.Fatalf("pause: %+v", r)
		}
		if r := rt("state", "cg"); !strings.Contains(r.stdout, `"status": "paused"`) {
			t.Fatalf("state: %s", r.stdout)
		}
		if r := rt("pause", "cg"); r.code != 1 || !strings.Contains(r.stderr, "invalid state transition from paused to paused") {
			t.Fatalf("pause of a paused container: %+v", r)
		}
		if r := rt("resume", "cg"); r.code != 0 || readTrim(t, cg["freezer"]+"/freezer.state") != "THAWED" {
			t.Fatalf("resume: %+v", r)
		}
	})
	t.Run("no freezer", func(t *testing.T) {
		pid := fakeInit(t).Process.Pid
		container(t, root, "nofreezer", pid, false, map[string]string{"memory": cg["memory"]})
		if r := rt("pause", "nofreezer"); r.code != 1 || !strings.Contains(r.stderr, "freeze container nofreezer: no freezer cgroup: unsupported") {
			t.Fatalf("%+v", r)
		}
	})
}
