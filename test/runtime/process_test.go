//go:build integration

package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// variant writes a bundle sharing base's rootfs, with base's config changed by edit.
func variant(t *testing.T, base string, edit func(cfg map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(base, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	obj(cfg, "root")["path"] = filepath.Join(base, "rootfs")
	edit(cfg)
	if b, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func setArgs(cfg map[string]any, script string) {
	obj(cfg, "process")["args"] = []string{"sh", "-c", script}
}

// TestProcessAndRootfs runs one container per config.md / config-linux.md feature and checks
// what the process sees.
func TestProcessAndRootfs(t *testing.T) {
	e := newEnv(t)
	base := bundle(t, plain, nil)
	for _, tc := range []struct {
		name   string
		edit   func(cfg map[string]any)
		script string
		flags  []string
		want   []string // substrings of the output, in order
	}{
		{"user groups umask", func(cfg map[string]any) {
			obj(cfg, "process")["user"] = map[string]any{"uid": 1000, "gid": 1001, "additionalGids": []int{1002, 1003}, "umask": 0o027}
		}, "id; umask", nil, []string{"uid=1000 gid=1001 groups=1002,1003", "0027"}},
		{"env and cwd", func(cfg map[string]any) {
			p := obj(cfg, "process")
			p["env"] = []string{"PATH=/bin", "FOO=bar baz"}
			p["cwd"] = "/made/by/runtime"
		}, "pwd; echo $FOO", nil, []string{"/made/by/runtime", "bar baz"}},
		{"capabilities", func(cfg map[string]any) {
			caps := []string{"CAP_CHOWN", "CAP_KILL"}
			obj(cfg, "process")["capabilities"] = map[string]any{"bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps, "ambient": caps}
		}, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status", nil, []string{
			"CapInh:\t0000000000000021", "CapPrm:\t0000000000000021", "CapEff:\t0000000000000021", "CapBnd:\t0000000000000021", "CapAmb:\t0000000000000021"}},
		{"no_new_privileges", nil, "grep NoNewPrivs /proc/self/status", nil, []string{"NoNewPrivs:\t1"}},
		{"rlimits", func(cfg map[string]any) {
			obj(cfg, "process")["rlimits"] = []any{map[string]any{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
				map[string]any{"type": "RLIMIT_CORE", "soft": 0, "hard": 0}}
		}, "ulimit -n; ulimit -Hn; ulimit -c", nil, []string{"512", "1000", "0"}},
		{"hostname domainname sysctl oom", func(cfg map[string]any) {
			cfg["hostname"] = "h1"
			cfg["domainname"] = "d1.example"
			obj(cfg, "linux")["sysctl"] = map[string]any{"net.ipv4.ip_forward": "1"}
			obj(cfg, "process")["oomScoreAdj"] = 123
		}, "hostname; cat /proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj", nil, []string{"h1", "d1.example", "1", "123"}},
		{"masked and read-only paths, read-only root", nil,
			"echo kcore=$(cat /proc/kcore | wc -c) firmware=$(ls /sys/firmware | wc -l); echo 1 > /proc/sys/kernel/domainname || echo ro-sys; touch /x || echo ro-root",
			nil, []string{"kcore=0 firmware=0", "ro-sys", "ro-root"}},
		{"default devices and links", nil,
			"ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1; readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo ok",
			nil, []string{"c\nc\nc\nc\nc\nc", "/proc/self/fd", "pts/ptmx", "ok"}},
		{"linux.devices", func(cfg map[string]any) {
			obj(cfg, "linux")["devices"] = []any{map[string]any{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600, "uid": 7, "gid": 8}}
		}, "stat -c '%F %a %u %g %t %T' /dev/mynull", nil, []string{"character special file 600 7 8 1 3"}},
		{"devices cgroup", func(cfg map[string]any) {
			caps := []string{"CAP_MKNOD", "CAP_DAC_OVERRIDE"}
			obj(cfg, "process")["capabilities"] = map[string]any{"bounding": caps, "effective": caps, "permitted": caps}
		}, "mknod /dev/mem2 c 1 1 && { head -c 1 /dev/mem2 >/dev/null 2>&1 || echo mem-denied; }; echo x > /dev/null && echo null-ok", nil,
			[]string{"mem-denied", "null-ok"}},
		{"no-pivot", nil, "cat /proc/self/mountinfo | awk '$5 == \"/\"' | wc -l; ls /", []string{"--no-pivot"}, []string{"1", "bin"}},
		{"mount options", func(cfg map[string]any) {
			cfg["mounts"] = append(cfg["mounts"].([]any),
				map[string]any{"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "noexec", "size=1m", "mode=700"}},
				map[string]any{"destination": "/hostetc", "type": "bind", "source": "/etc", "options": []string{"rbind", "ro", "nosuid"}})
		}, "grep -E ' /(data|hostetc) ' /proc/self/mountinfo | cut -d' ' -f5,6; stat -c %a /data; touch /hostetc/x || echo ro-bind", nil,
			[]string{"/data rw,nosuid,nodev,noexec", "/hostetc ro,nosuid", "700", "ro-bind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := variant(t, base, func(cfg map[string]any) {
				if tc.edit != nil {
					tc.edit(cfg)
				}
				setArgs(cfg, tc.script)
			})
			id := strings.ReplaceAll(tc.name, " ", "-")
			id = strings.NewReplacer(",", "", "/", "").Replace(id)
			args := append([]string{"run", "--bundle", b}, tc.flags...)
			r := e.ok(append(args, id)...)
			rest := r.stdout
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output %q: want %q (in order %q)", r.stdout, w, tc.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestExec covers exec's two forms: a process.json and arguments with flags.
func TestExec(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, nil, "sleep", "600")
	e.ok("run", "-d", "--bundle", b, "ex")
	proc := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(proc, []byte(`{"args":["sh","-c","id -u; pwd; echo $A"],"cwd":"/tmp","env":["A=from-file"],"user":{"uid":5,"gid":5}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"process file", []string{"exec", "--process", proc, "ex"}, "5\n/tmp\nfrom-file\n"},
		{"args and flags", []string{"exec", "--user", "7:8", "--cwd", "/etc", "--env", "B=flag", "ex", "sh", "-c", "id -u; id -g; pwd; echo $B"}, "7\n8\n/etc\nflag\n"},
		{"sees the init", []string{"exec", "ex", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"}, "sleep 600 "},
		{"exit code", []string{"exec", "ex", "sh", "-c", "exit 5"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(tc.args...)
			if tc.name == "exit code" {
				if r.code != 5 {
					t.Fatalf("exec exit %d, want 5: %s", r.code, r)
				}
				return
			}
			if r.code != 0 || r.stdout != tc.want {
				t.Fatalf("%s; want stdout %q", r, tc.want)
			}
		})
	}
	t.Run("detached with pid file", func(t *testing.T) {
		pf := filepath.Join(t.TempDir(), "pid")
		e.ok("exec", "-d", "--pid-file", pf, "ex", "sleep", "300")
		pid, _ := os.ReadFile(pf)
		var pids []int
		json.Unmarshal([]byte(e.ok("ps", "--format", "json", "ex").stdout), &pids)
		if len(pids) != 2 || !strings.Contains(fmt.Sprint(pids), string(pid)) {
			t.Fatalf("ps %v, exec pid %s", pids, pid)
		}
	})
	t.Run("refused when paused", func(t *testing.T) {
		e.ok("pause", "ex")
		defer e.ok("resume", "ex")
		if r := e.run("exec", "ex", "true"); r.code == 0 || !strings.Contains(e.lastLogError(), "paused") {
			t.Fatalf("exec in a paused container: %s", r)
		}
	})
}

// TestCgroupsPath: runc's conventions for absolute, relative and systemd-style paths.
func TestCgroupsPath(t *testing.T) {
	e := newEnv(t)
	base := bundle(t, plain, nil)
	own, _ := os.ReadFile("/proc/self/cgroup")
	pidsOwn := ""
	for _, l := range strings.Split(string(own), "\n") {
		if strings.Contains(l, ":pids:") {
			pidsOwn = strings.SplitN(l, ":", 3)[2]
		}
	}
	if pidsOwn == "" {
		t.Skip("no v1 pids hierarchy")
	}
	for _, tc := range []struct {
		name, path string
		flags      []string
		want       string
	}{
		{"absolute", "/wharf-test/abs", nil, "/wharf-test/abs"},
		{"relative", "wharf-test/rel", nil, filepath.Join(pidsOwn, "wharf-test/rel")},
		{"systemd", "wharf.slice:wt:sd", []string{"--systemd-cgroup"}, "/wharf.slice/wt-sd.scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := variant(t, base, func(cfg map[string]any) {
				obj(cfg, "linux")["cgroupsPath"] = tc.path
				setArgs(cfg, "grep :pids: /proc/self/cgroup")
			})
			args := append(append([]string{}, tc.flags...), "run", "--bundle", b, "cg-"+tc.name)
			out := e.ok(args...).stdout
			if want := "pids:" + tc.want + "\n"; !strings.HasSuffix(out, want) {
				t.Fatalf("cgroup %q, want %q", out, want)
			}
			if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/pids", tc.want)); err == nil {
				t.Fatalf("cgroup %s left after the container", tc.want)
			}
		})
	}
	for _, d := range []string{"/wharf-test", "/wharf.slice", filepath.Join(pidsOwn, "wharf-test")} {
		for _, h := range []string{"pids", "memory", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer", "systemd", "unified"} {
			os.Remove(filepath.Join("/sys/fs/cgroup", h, d))
		}
	}
}

// linux.seccomp: a profile that answers mkdir with EPERM applies to the container's process
// (with and without noNewPrivileges) and to processes exec'd into it, as with runc; a profile
// the runtime cannot compile is a create error.
func TestSeccomp(t *testing.T) {
	e := newEnv(t)
	profile := map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW",
		"architectures": []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
		"syscalls": []map[string]any{
			{"names": []string{"mkdir", "mkdirat"}, "action": "SCMP_ACT_ERRNO"},
			{"names": []string{"getpriority"}, "action": "SCMP_ACT_ERRNO", "errnoRet": 15,
				"args": []map[string]any{{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}}},
		},
	}
	// the rootfs is read-only: without the filter mkdir would fail with EROFS, not EPERM
	script := "grep -E '^Seccomp:' /proc/self/status; mkdir /tmp/x 2>&1; echo mkdir=$?; ls / >/dev/null; echo ls=$?"
	want := "Seccomp:\t2\nmkdir: can't create directory '/tmp/x': Operation not permitted\nmkdir=1\nls=0\n"
	for _, nnp := range []bool{false, true} {
		t.Run(fmt.Sprintf("noNewPrivileges=%v", nnp), func(t *testing.T) {
			b := bundle(t, plain, func(cfg map[string]any) {
				obj(cfg, "linux")["seccomp"] = profile
				obj(cfg, "process")["noNewPrivileges"] = nnp
			}, "sh", "-c", script)
			r := e.run("run", "--bundle", b, fmt.Sprintf("sc-%v", nnp))
			if r.code != 0 || r.stdout != want {
				t.Fatalf("%s; want stdout %q", r, want)
			}
		})
	}
	t.Run("exec", func(t *testing.T) {
		b := bundle(t, plain, func(cfg map[string]any) { obj(cfg, "linux")["seccomp"] = profile }, "sleep", "600")
		e.ok("run", "-d", "--bundle", b, "sc-exec")
		r := e.run("exec", "sc-exec", "sh", "-c", "mkdir /tmp/y 2>/dev/null; echo mkdir=$?")
		if r.code != 0 || r.stdout != "mkdir=1\n" {
			t.Fatalf("%s; want mkdir=1", r)
		}
		e.ok("delete", "-f", "sc-exec")
	})
	t.Run("unsupported profile", func(t *testing.T) {
		b := bundle(t, plain, func(cfg map[string]any) {
			obj(cfg, "linux")["seccomp"] = map[string]any{"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/nope.sock"}
		}, "true")
		r := e.run("run", "--bundle", b, "sc-bad")
		if r.code == 0 || !strings.Contains(r.stderr, "seccomp") {
			t.Fatalf("%s; want a seccomp error", r)
		}
	})
}

// process.apparmorProfile and selinuxLabel on a host without that security module: a create
// error naming the field, as runc refuses them too (never a silently unconfined container).
func TestSecurityLabelsWithoutLSM(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ field, value, module, enabled string }{
		{"apparmorProfile", "docker-default", "AppArmor", "/sys/module/apparmor/parameters/enabled"},
		{"selinuxLabel", "system_u:system_r:container_t:s0", "SELinux", "/sys/fs/selinux/enforce"},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if b, err := os.ReadFile(tc.enabled); err == nil && (tc.module == "SELinux" || strings.HasPrefix(string(b), "Y")) {
				t.Skipf("%s is enabled on this host", tc.module)
			}
			b := bundle(t, plain, func(cfg map[string]any) { obj(cfg, "process")[tc.field] = tc.value }, "true")
			r := e.run("run", "--bundle", b, "lsm-"+tc.field)
			if r.code == 0 || !strings.Contains(r.stderr, "process."+tc.field) || !strings.Contains(r.stderr, tc.module+" is not enabled") {
				t.Fatalf("%s; want an error naming process.%s", r, tc.field)
			}
		})
	}
}

// TestEvents: `events --stats` prints the container's cgroup figures in runc's JSON shape, and
// `events` streams them and reports the OOM killer's kills, until the container stops.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, func(cfg map[string]any) {
		obj(obj(cfg, "linux"), "resources")["memory"] = map[string]any{"limit": 16 << 20}
		obj(obj(cfg, "linux"), "resources")["pids"] = map[string]any{"limit": 50}
	}, "/oom.sh")
	// a child that needs 60 MB, again and again; the init itself stays small
	script := "#!/bin/sh\nsleep 1\nwhile true; do sh -c 'v=$(head -c 60000000 /dev/zero | tr \"\\0\" a)'; sleep 1; done\n"
	if err := os.WriteFile(filepath.Join(b, "rootfs", "oom.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("run", "-d", "--bundle", b, "ev")
	type event struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data struct {
			CPU struct {
				Usage struct {
					Total  uint64   `json:"total"`
					Percpu []uint64 `json:"percpu"`
				} `json:"usage"`
			} `json:"cpu"`
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
					Usage uint64 `json:"usage"`
				} `json:"usage"`
				Raw map[string]uint64 `json:"raw"`
			} `json:"memory"`
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
		} `json:"data"`
	}
	var ev event
	out := e.ok("events", "--stats", "ev").stdout
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatalf("events --stats: %v: %q", err, out)
	}
	d := ev.Data
	if ev.Type != "stats" || ev.ID != "ev" || d.Memory.Usage.Limit != 16<<20 || d.Memory.Usage.Usage == 0 ||
		d.Pids.Limit != 50 || d.Pids.Current == 0 || d.CPU.Usage.Total == 0 || len(d.CPU.Usage.Percpu) == 0 || len(d.Memory.Raw) == 0 {
		t.Fatalf("events --stats: %s", out)
	}

	// the stream: stats every 200ms, and an oom event within a few seconds
	cmd := e.cmd("events", "--interval", "200ms", "ev")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	dec := json.NewDecoder(stdout)
	var stats, oom int
	for oom == 0 {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("events stream ended after %d stats and no oom event: %v", stats, err)
		}
		switch ev.Type {
		case "stats":
			stats++
		case "oom":
			oom++
		}
	}
	// the stream ends by itself once the container is gone
	e.ok("delete", "-f", "ev")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("events after the container stopped: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events did not end when the container was deleted")
	}
	if r := e.run("events", "--stats", "ev"); r.code == 0 {
		t.Fatalf("events of a deleted container: %s", r)
	}
}
