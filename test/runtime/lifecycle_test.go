//go:build integration

package runtime

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRunForeground(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"hello", nil, 0, "hello from wharf"},
		{"exit code", []string{"sh", "-c", "exit 7"}, 7, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bundle(t, plain, nil, tc.args...)
			cmd := e.cmd("run", "--bundle", b, "fg-"+strings.ReplaceAll(tc.name, " ", "-"))
			out, err := cmd.Output()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.out) {
				t.Fatalf("run: exit %d, output %q; want exit %d, output with %q", code, out, tc.code, tc.out)
			}
			if r := e.run("state", "fg-"+strings.ReplaceAll(tc.name, " ", "-")); r.code == 0 {
				t.Fatalf("run did not delete the container: %s", r)
			}
		})
	}
}

// TestRunSignals: `run` forwards the signals it gets to the container's init, and reports a
// death by signal as 128+N.
func TestRunSignals(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, nil, "sh", "-c", "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done")
	for _, tc := range []struct {
		name string
		send func(cmd *exec.Cmd, id string)
		code int
	}{
		{"SIGTERM to run is forwarded", func(cmd *exec.Cmd, id string) { cmd.Process.Signal(unix.SIGTERM) }, 3},
		{"killed from outside", func(cmd *exec.Cmd, id string) { e.ok("kill", id, "KILL") }, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "sig" + strconv.Itoa(tc.code)
			cmd := e.cmd("run", "--bundle", b, id)
			out, err := os.CreateTemp(t.TempDir(), "out")
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 500; i++ {
				if b, _ := os.ReadFile(out.Name()); strings.Contains(string(b), "ready") {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			tc.send(cmd, id)
			err = cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Fatalf("run exited %d (%v), want %d", code, err, tc.code)
			}
		})
	}
}

// TestLifecycle walks every transition of runtime.md with separate runtime processes, so the
// state on disk is what carries the container from one command to the next.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, func(cfg map[string]any) {
		cfg["annotations"] = map[string]any{"org.example.key": "value"}
	}, "sleep", "600")
	id := "life"
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.ok("create", "--bundle", b, "--pid-file", pidFile, id)

	// created: the runtime that created it has exited; the init waits for start
	s := e.state(id)
	pb, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "created" || strconv.Itoa(s.Pid) != string(pb) || s.Bundle != b || s.Annotations["org.example.key"] != "value" {
		t.Fatalf("after create: state %+v, pid file %q", s, pb)
	}
	e.ok("start", id)
	e.waitStatus(id, "running")
	if r := e.run("start", id); r.code == 0 || !strings.Contains(e.lastLogError(), "running") {
		t.Fatalf("second start: %s, log %q", r, e.lastLogError())
	}
	if r := e.run("delete", id); r.code == 0 || !strings.Contains(e.lastLogError(), "not stopped") {
		t.Fatalf("delete of a running container: %s, log %q", r, e.lastLogError())
	}
	if r := e.run("create", "--bundle", b, id); r.code == 0 || !strings.Contains(e.lastLogError(), "already exists") {
		t.Fatalf("duplicate create: %s, log %q", r, e.lastLogError())
	}

	var pids []int
	if err := json.Unmarshal([]byte(e.ok("ps", "--format", "json", id).stdout), &pids); err != nil || len(pids) != 1 || pids[0] != s.Pid {
		t.Fatalf("ps --format json: %v %v, want [%d]", pids, err, s.Pid)
	}
	if out := e.ok("exec", id, "sh", "-c", "echo exec-ok; hostname").stdout; out != "exec-ok\nwharf\n" {
		t.Fatalf("exec output %q", out)
	}

	e.ok("pause", id)
	e.waitStatus(id, "paused")
	if r := e.run("pause", id); r.code == 0 {
		t.Fatalf("pause of a paused container: %s", r)
	}
	e.ok("resume", id)
	e.waitStatus(id, "running")

	var list []state
	if err := json.Unmarshal([]byte(e.ok("list", "--format", "json").stdout), &list); err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("list --format json: %+v %v", list, err)
	}

	e.ok("kill", id, "KILL")
	e.waitStatus(id, "stopped")
	if s := e.state(id); s.Pid != 0 {
		t.Fatalf("stopped container reports pid %d", s.Pid)
	}
	e.ok("delete", id)
	if r := e.run("state", id); r.code == 0 || !strings.Contains(e.lastLogError(), "does not exist") {
		t.Fatalf("state after delete: %s", r)
	}
	if left := cgroupLeft(t, id); len(left) > 0 {
		t.Fatalf("cgroups left after delete: %v", left)
	}
}

func TestDeleteForceAndCreated(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, nil, "sleep", "600")
	t.Run("created is deleted without force, as runc", func(t *testing.T) {
		e.ok("create", "--bundle", b, "cr")
		pid := e.state("cr").Pid
		e.ok("delete", "cr")
		if unix.Kill(pid, 0) == nil {
			waitGone(t, pid)
		}
	})
	t.Run("running needs force", func(t *testing.T) {
		e.ok("run", "-d", "--bundle", b, "rf")
		pid := e.state("rf").Pid
		e.ok("delete", "--force", "rf")
		waitGone(t, pid)
		if left := cgroupLeft(t, "rf"); len(left) > 0 {
			t.Fatalf("cgroups left: %v", left)
		}
	})
	t.Run("kill --all signals every process", func(t *testing.T) {
		e.ok("run", "-d", "--bundle", b, "ka")
		e.ok("exec", "-d", "ka", "sleep", "500")
		e.ok("kill", "--all", "ka", "9")
		e.waitStatus("ka", "stopped")
		e.ok("delete", "ka")
	})
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still runs", pid)
}

// TestHookOrder checks the six hooks run in runtime.md's order, with the state on stdin, their
// env, and in the right namespaces (createContainer and startContainer see the container's
// hostname; the others the host's).
func TestHookOrder(t *testing.T) {
	e := newEnv(t)
	logDir := t.TempDir()
	log := filepath.Join(logDir, "hooks.log")
	host, _ := os.Hostname()
	hook := func(name string) map[string]any {
		// `hostname` tells the namespace; the state's status comes from stdin
		script := fmt.Sprintf(`st=$(cat); s=${st#*\"status\":\"}; echo "%s ${s%%%%\"*} $(hostname) $HOOKENV" >> %s`, name, log)
		return map[string]any{"path": "/bin/sh", "args": []string{"sh", "-c", script}, "env": []string{"HOOKENV=" + name + "-env"}, "timeout": 10}
	}
	// startContainer runs after pivot_root: its path and its log are inside the container
	startHook := map[string]any{"path": "/bin/sh", "args": []string{"sh", "-c",
		`st=$(cat); s=${st#*\"status\":\"}; echo "startContainer ${s%%\"*} $(hostname) $HOOKENV" >> /hooks.log`}, "env": []string{"HOOKENV=startContainer-env"}}
	b := bundle(t, writableRoot, func(cfg map[string]any) {
		cfg["hooks"] = map[string]any{
			"prestart": []any{hook("prestart")}, "createRuntime": []any{hook("createRuntime")},
			"createContainer": []any{hook("createContainer")}, "startContainer": []any{startHook},
			"poststart": []any{hook("poststart")}, "poststop": []any{hook("poststop")},
		}
	}, "sleep", "600")
	e.ok("create", "--bundle", b, "hooks")
	e.ok("start", "hooks")
	e.ok("kill", "hooks", "KILL")
	e.waitStatus("hooks", "stopped")
	e.ok("delete", "hooks")
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"prestart creating " + host + " prestart-env",
		"createRuntime creating " + host + " createRuntime-env",
		"createContainer creating wharf createContainer-env",
		"poststart running " + host + " poststart-env",
		"poststop stopped " + host + " poststop-env",
	}, "\n") + "\n"
	if string(got) != want {
		t.Fatalf("hooks log:\n%s\nwant:\n%s", got, want)
	}
	start, err := os.ReadFile(filepath.Join(b, "rootfs", "hooks.log"))
	if err != nil || string(start) != "startContainer created wharf startContainer-env\n" {
		t.Fatalf("startContainer hook log %q, %v", start, err)
	}

	t.Run("failing createRuntime hook fails create and leaves nothing", func(t *testing.T) {
		b := bundle(t, plain, func(cfg map[string]any) {
			cfg["hooks"] = map[string]any{"createRuntime": []any{map[string]any{"path": "/bin/false"}}}
		}, "sleep", "600")
		if r := e.run("create", "--bundle", b, "badhook"); r.code == 0 || !strings.Contains(e.lastLogError(), "createRuntime") {
			t.Fatalf("create: %s, log %q", r, e.lastLogError())
		}
		if _, err := os.Stat(filepath.Join(e.root, "badhook")); err == nil {
			t.Fatal("state left behind")
		}
		if left := cgroupLeft(t, "badhook"); len(left) > 0 {
			t.Fatalf("cgroups left: %v", left)
		}
	})
	t.Run("failing poststart and poststop hooks are warnings", func(t *testing.T) {
		mark := filepath.Join(t.TempDir(), "ran")
		after := map[string]any{"path": "/bin/sh", "args": []string{"sh", "-c", "echo ran >> " + mark}}
		b := bundle(t, plain, func(cfg map[string]any) {
			cfg["hooks"] = map[string]any{
				"poststart": []any{map[string]any{"path": "/bin/false"}, after},
				"poststop":  []any{map[string]any{"path": "/bin/false"}, after},
			}
		}, "sleep", "600")
		e.ok("create", "--bundle", b, "warnhook")
		e.ok("start", "warnhook")
		e.ok("delete", "--force", "warnhook")
		if got, _ := os.ReadFile(mark); string(got) != "ran\nran\n" {
			t.Fatalf("hooks after the failing ones ran %q times", got)
		}
		if log, _ := os.ReadFile(e.log); !strings.Contains(string(log), `"level":"warning"`) || !strings.Contains(string(log), "poststart hook #0") {
			t.Fatalf("no warning logged: %s", log)
		}
	})
	t.Run("hook timeout", func(t *testing.T) {
		b := bundle(t, plain, func(cfg map[string]any) {
			cfg["hooks"] = map[string]any{"prestart": []any{map[string]any{"path": "/bin/sleep", "args": []string{"sleep", "30"}, "timeout": 1}}}
		}, "sleep", "600")
		if r := e.run("create", "--bundle", b, "slowhook"); r.code == 0 || !strings.Contains(e.lastLogError(), "timed out") {
			t.Fatalf("create: %s, log %q", r, e.lastLogError())
		}
	})
}

// TestJoinNetnsByPath joins a named network namespace (ip netns add), as a Kubernetes pod's
// containers do.
func TestJoinNetnsByPath(t *testing.T) {
	e := newEnv(t)
	_, err := exec.LookPath("ip")
	need(t, "ip (iproute2)", err)
	name := fmt.Sprintf("wharf-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nsPath := "/var/run/netns/" + name
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, plain, func(cfg map[string]any) {
		linux := obj(cfg, "linux")
		nss := linux["namespaces"].([]any)
		for i, ns := range nss {
			if ns.(map[string]any)["type"] == "network" {
				nss[i] = map[string]any{"type": "network", "path": nsPath}
			}
		}
	}, "sh", "-c", "readlink /proc/self/ns/net")
	out := e.ok("run", "--bundle", b, "netns").stdout
	if want := fmt.Sprintf("net:[%d]\n", st.Ino); out != want {
		t.Fatalf("container's netns %q, want %q", out, want)
	}
	// the runtime's own thread that joined is gone: a second container still gets a new netns
	b2 := bundle(t, plain, nil, "sh", "-c", "readlink /proc/self/ns/net")
	if out2 := e.ok("run", "--bundle", b2, "netns2").stdout; out2 == out {
		t.Fatalf("a container without a netns path joined %s", out2)
	}
}

// TestHostileSymlink: the image has symlinks that point at host paths; mounts through them
// must land inside the rootfs.
func TestHostileSymlink(t *testing.T) {
	e := newEnv(t)
	hostTarget := t.TempDir() // what a naive runtime would mount over
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "marker"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := bundle(t, writableRoot, func(cfg map[string]any) {
		mounts := cfg["mounts"].([]any)
		cfg["mounts"] = append(mounts,
			map[string]any{"destination": "/evil/sub", "type": "bind", "source": src, "options": []string{"rbind", "ro"}},
			map[string]any{"destination": "/evil2", "type": "tmpfs", "source": "tmpfs", "options": []string{"size=1m"}},
		)
	}, "sh", "-c", "cat /evil/sub/marker; echo; ls -d "+hostTarget+"/sub "+hostTarget+"/up")
	rootfs := filepath.Join(b, "rootfs")
	if err := os.Symlink(hostTarget, filepath.Join(rootfs, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../.."+hostTarget+"/up", filepath.Join(rootfs, "evil2")); err != nil {
		t.Fatal(err)
	}
	out := e.ok("run", "--bundle", b, "hostile").stdout
	// inside, the symlink resolved within the rootfs: hostTarget/sub exists there
	if !strings.HasPrefix(out, "inside\n") || !strings.Contains(out, hostTarget+"/sub") || !strings.Contains(out, hostTarget+"/up") {
		t.Fatalf("container output %q", out)
	}
	ents, _ := os.ReadDir(hostTarget)
	if len(ents) != 0 {
		t.Fatalf("the host directory %s was touched: %v", hostTarget, ents)
	}
	if _, err := os.Stat(filepath.Join(rootfs, hostTarget, "sub")); err != nil {
		t.Fatalf("mount point not created inside the rootfs: %v", err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), hostTarget) {
		t.Fatalf("a mount on the host at %s", hostTarget)
	}
}

// TestConsoleSocket receives the pty master as containerd's shim does.
func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, withTerminal, nil, "sh", "-c", "tty; echo tty-ok; sleep 1")
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type recv struct {
		f   *os.File
		err error
	}
	ch := make(chan recv, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			ch <- recv{nil, err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- recv{nil, err}
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			ch <- recv{nil, fmt.Errorf("no control message: %v", err)}
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			ch <- recv{nil, fmt.Errorf("no descriptor: %v", err)}
			return
		}
		ch <- recv{os.NewFile(uintptr(fds[0]), "master"), nil}
	}()
	if r := e.run("create", "--bundle", b, "tty"); r.code == 0 || !strings.Contains(e.lastLogError(), "console-socket") {
		t.Fatalf("create with a terminal and no console socket: %s", r)
	}
	e.ok("create", "--bundle", b, "--console-socket", sock, "tty")
	rc := <-ch
	if rc.err != nil {
		t.Fatal(rc.err)
	}
	defer rc.f.Close()
	e.ok("start", "tty")
	var out []byte
	buf := make([]byte, 1024)
	for !strings.Contains(string(out), "tty-ok") {
		n, err := rc.f.Read(buf)
		if err != nil {
			break
		}
		out = append(out, buf[:n]...)
	}
	if !strings.Contains(string(out), "/dev/pts/0") || !strings.Contains(string(out), "tty-ok") {
		t.Fatalf("terminal output %q", out)
	}
}

// TestBadInput: each case fails with a clear error in the JSON log, a non-zero exit, and leaves
// no state and no cgroup behind.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	good := bundle(t, plain, nil, "true")
	write := func(content string) string {
		d := t.TempDir()
		if err := os.Symlink(filepath.Join(good, "rootfs"), filepath.Join(d, "rootfs")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "config.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	cfg, _ := os.ReadFile(filepath.Join(good, "config.json"))
	edit := func(f func(m map[string]any)) string {
		var m map[string]any
		json.Unmarshal(cfg, &m)
		f(m)
		b, _ := json.Marshal(m)
		return write(string(b))
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown id", []string{"state", "nosuch"}, "does not exist"},
		{"unknown id start", []string{"start", "nosuch"}, "does not exist"},
		{"unknown id kill", []string{"kill", "nosuch", "KILL"}, "does not exist"},
		{"unknown id delete", []string{"delete", "nosuch"}, "does not exist"},
		{"invalid id", []string{"create", "--bundle", good, "a/b"}, "invalid container id"},
		{"missing bundle", []string{"create", "--bundle", "/nonexistent/bundle", "bad1"}, "/nonexistent/bundle"},
		{"no config.json", []string{"create", "--bundle", t.TempDir(), "bad2"}, "config.json"},
		{"malformed config", []string{"create", "--bundle", write("{not json"), "bad3"}, "parse"},
		{"invalid config", []string{"create", "--bundle", edit(func(m map[string]any) { delete(m, "process") }), "bad4"}, "process is missing"},
		{"unknown ociVersion major", []string{"create", "--bundle", edit(func(m map[string]any) { m["ociVersion"] = "2.0.0" }), "bad5"}, "ociVersion"},
		{"missing executable", []string{"create", "--bundle", edit(func(m map[string]any) {
			m["process"].(map[string]any)["args"] = []string{"/no/such/binary"}
		}), "bad6"}, "/no/such/binary"},
		{"unknown signal", []string{"kill", "nosuch", "SIGBOGUS"}, "unknown signal"},
		{"bad log format", []string{"--log-format", "xml", "list"}, "log-format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(e.log)
			r := e.run(tc.args...)
			if r.code == 0 {
				t.Fatalf("succeeded: %s", r)
			}
			if tc.name == "bad log format" {
				// no JSON logger yet: the error is on stderr
				if !strings.Contains(r.stderr, tc.want) {
					t.Fatalf("stderr %q, want %q", r.stderr, tc.want)
				}
				return
			}
			if msg := e.lastLogError(); !strings.Contains(msg, tc.want) {
				t.Fatalf("last JSON log error %q, want it to mention %q (%s)", msg, tc.want, r)
			}
			id := tc.args[len(tc.args)-1]
			if _, err := os.Stat(filepath.Join(e.root, id)); err == nil && strings.HasPrefix(id, "bad") {
				t.Fatalf("state left for %s", id)
			}
			if left := cgroupLeft(t, id); len(left) > 0 && strings.HasPrefix(id, "bad") {
				t.Fatalf("cgroups left for %s: %v", id, left)
			}
		})
	}
}

func TestVersionAndFeatures(t *testing.T) {
	e := newEnv(t)
	v := strings.Split(strings.TrimSpace(e.ok("--version").stdout), "\n")
	if len(v) != 3 || !strings.HasPrefix(v[0], "wharf-runtime version ") || !strings.HasPrefix(v[1], "commit: ") || !strings.HasPrefix(v[2], "spec: 1.") {
		t.Fatalf("--version: %q", v)
	}
	var f struct {
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
	}
	if err := json.Unmarshal([]byte(e.ok("features").stdout), &f); err != nil || len(f.Hooks) != 6 {
		t.Fatalf("features: %+v %v", f, err)
	}
	d := t.TempDir()
	cmd := e.cmd("spec")
	cmd.Dir = d
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spec: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
		t.Fatal(err)
	}
}

// TestUserNamespace maps the container's root to an unprivileged host uid; /dev nodes are bind
// mounts of the host's there (mknod is refused in a user namespace).
func TestUserNamespace(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, func(cfg map[string]any) {
		linux := obj(cfg, "linux")
		linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "user"})
		m := []any{map[string]any{"containerID": 0, "hostID": 200000, "size": 65536}}
		linux["uidMappings"], linux["gidMappings"] = m, m
	}, "sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map; echo x > /dev/null && echo null-ok")
	if out, err := exec.Command("chown", "-R", "200000:200000", filepath.Join(b, "rootfs")).CombinedOutput(); err != nil {
		t.Fatalf("chown: %v %s", err, out)
	}
	// the mapped root must be able to reach the rootfs (t.TempDir makes 0700 directories)
	for d := filepath.Dir(b); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out := e.ok("run", "--bundle", b, "userns").stdout
	if out != "0\n 0 200000 65536\nnull-ok\n" {
		t.Fatalf("output %q", out)
	}
	t.Run("exec joins the user namespace", func(t *testing.T) {
		if !e.hasNsenter() {
			t.Skip("wharf-runtime built without cgo: joining a user namespace is refused")
		}
		b2 := variant(t, b, func(cfg map[string]any) { setArgs(cfg, "sleep 600") })
		e.ok("run", "-d", "--bundle", b2, "userns-exec")
		if out := e.ok("exec", "userns-exec", "sh", "-c", "id -u; tr -s ' ' < /proc/self/uid_map").stdout; out != "0\n 0 200000 65536\n" {
			t.Fatalf("exec output %q", out)
		}
		t.Run("create joins it by path", func(t *testing.T) {
			userns := fmt.Sprintf("/proc/%d/ns/user", e.state("userns-exec").Pid)
			b3 := variant(t, b, func(cfg map[string]any) {
				linux := obj(cfg, "linux")
				for i, ns := range linux["namespaces"].([]any) {
					if ns.(map[string]any)["type"] == "user" {
						linux["namespaces"].([]any)[i] = map[string]any{"type": "user", "path": userns}
					}
				}
				delete(linux, "uidMappings")
				delete(linux, "gidMappings")
				setArgs(cfg, "id -u; tr -s ' ' < /proc/self/uid_map; echo pid=$$; readlink /proc/self/ns/user")
			})
			want, err := os.Readlink(userns)
			if err != nil {
				t.Fatal(err)
			}
			if out := e.ok("run", "--bundle", b3, "userns-join").stdout; out != "0\n 0 200000 65536\npid=1\n"+want+"\n" {
				t.Fatalf("output %q, want the user namespace %s", out, want)
			}
		})
	})
}

// TestTimeNamespace: offsets are applied to a new time namespace, and exec joins it.
func TestTimeNamespace(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, func(cfg map[string]any) {
		linux := obj(cfg, "linux")
		linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "time"})
		linux["timeOffsets"] = map[string]any{"boottime": map[string]any{"secs": 1000000}}
	}, "sleep", "600")
	e.ok("run", "-d", "--bundle", b, "timens")
	if !e.hasNsenter() {
		t.Skip("wharf-runtime built without cgo: joining a time namespace is refused")
	}
	out := e.ok("exec", "timens", "sh", "-c", "cut -d. -f1 /proc/uptime").stdout
	if n, err := strconv.Atoi(strings.TrimSpace(out)); err != nil || n < 1000000 {
		t.Fatalf("uptime in the container %q, want ≥ 1000000", out)
	}
}

// TestResources: memory, pids and cpu limits land in the container's cgroups, and a cgroup
// namespace shows them at its root.
func TestResources(t *testing.T) {
	e := newEnv(t)
	b := bundle(t, plain, func(cfg map[string]any) {
		linux := obj(cfg, "linux")
		res := obj(linux, "resources")
		res["memory"] = map[string]any{"limit": 67108864}
		res["pids"] = map[string]any{"limit": 100}
		res["cpu"] = map[string]any{"quota": 50000, "period": 100000}
		linux["namespaces"] = append(linux["namespaces"].([]any), map[string]any{"type": "cgroup"})
	}, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us; grep pids /proc/self/cgroup")
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("not a cgroup v1 host")
	}
	out := e.ok("run", "--bundle", b, "res").stdout
	if !strings.HasPrefix(out, "67108864\n100\n50000\n") || !strings.Contains(out, "pids:/\n") {
		t.Fatalf("output %q", out)
	}
	t.Run("update", func(t *testing.T) {
		b2 := variant(t, b, func(cfg map[string]any) { setArgs(cfg, "sleep 600") })
		e.ok("run", "-d", "--bundle", b2, "res-up")
		e.ok("update", "--pids-limit", "42", "res-up")
		if out := e.ok("exec", "res-up", "cat", "/sys/fs/cgroup/pids/pids.max").stdout; out != "42\n" {
			t.Fatalf("pids.max after update %q", out)
		}
		res := filepath.Join(t.TempDir(), "res.json")
		os.WriteFile(res, []byte(`{"memory":{"limit":33554432}}`), 0o644)
		e.ok("update", "--resources", res, "res-up")
		if out := e.ok("exec", "res-up", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout; out != "33554432\n" {
			t.Fatalf("memory limit after update %q", out)
		}
	})
}

// TestInheritedMountNamespace: without a mount namespace in the config the container shares
// the runtime's (config-linux.md), as with runc: it still sees its rootfs as / with its mounts,
// a read-only root stays confined to the container, exec enters the same root, and delete
// leaves the runtime's namespace as it found it (a mount already at the rootfs, as containerd
// makes, stays). Masked paths need a namespace of its own.
func TestInheritedMountNamespace(t *testing.T) {
	e := newEnv(t)
	noMountNS := func(cfg map[string]any) {
		linux := obj(cfg, "linux")
		var nss []any
		for _, ns := range linux["namespaces"].([]any) {
			if ns.(map[string]any)["type"] != "mount" {
				nss = append(nss, ns)
			}
		}
		linux["namespaces"] = nss
		delete(linux, "maskedPaths")
		delete(linux, "readonlyPaths")
		obj(cfg, "root")["readonly"] = true
	}
	b := bundle(t, plain, noMountNS, "sleep", "600")
	rootfs, err := filepath.EvalSymlinks(filepath.Join(b, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	// the rootfs is a mount point already, as with containerd's snapshots
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(rootfs, unix.MNT_DETACH) })
	mountsAt := func(prefix string) int {
		b, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 4 && (f[4] == prefix || strings.HasPrefix(f[4], prefix+"/")) {
				n++
			}
		}
		return n
	}
	before := mountsAt(rootfs)
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	e.ok("run", "-d", "--bundle", b, "nomntns")
	if n := mountsAt(rootfs); n <= before {
		t.Fatalf("no container mounts under %s in the runtime's namespace (%d)", rootfs, n)
	}
	out := e.ok("exec", "nomntns", "sh", "-c", "readlink /proc/1/ns/mnt; ls /bin/busybox; touch /x 2>/dev/null && echo writable || echo read-only").stdout
	if want := hostNS + "\n/bin/busybox\nread-only\n"; out != want {
		t.Fatalf("exec in the container: %q, want %q", out, want)
	}
	// the read-only root is the container's bind, not the file system under it
	if err := os.WriteFile(filepath.Join(b, "host-write"), nil, 0o644); err != nil {
		t.Fatalf("the bundle's file system became read-only: %v", err)
	}
	e.ok("delete", "-f", "nomntns")
	if n := mountsAt(rootfs); n != before {
		t.Fatalf("%d mounts under %s after delete, want the %d there before", n, rootfs, before)
	}

	masked := bundle(t, plain, func(cfg map[string]any) {
		noMountNS(cfg)
		obj(cfg, "linux")["maskedPaths"] = []any{"/proc/kcore"}
	}, "true")
	if r := e.run("run", "--bundle", masked, "nomntns-masked"); r.code == 0 || !strings.Contains(e.lastLogError(), "masked and read-only paths need a mount namespace") {
		t.Fatalf("masked paths without a mount namespace: %s (%s)", r, e.lastLogError())
	}
}
