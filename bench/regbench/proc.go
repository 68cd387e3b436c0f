package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on every Linux port Go
// supports).
const clockTicks = 100

// procSample is what /proc tells about a server process.
type procSample struct {
	cpu      float64 // user + system CPU time, seconds
	rssKB    int64   // resident set now (VmRSS)
	peakRSSK int64   // peak resident set of the process's life (VmHWM)
}

// sampleProc reads /proc/PID/stat and /proc/PID/status; a pid of 0 or a process that is gone
// gives zeros.
func sampleProc(pid int) procSample {
	var s procSample
	if pid <= 0 {
		return s
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// the fields after "(comm)": state is field 3, utime 14, stime 15
		str := string(b)
		if i := strings.LastIndexByte(str, ')'); i >= 0 {
			f := strings.Fields(str[i+1:])
			if len(f) > 12 {
				ut, _ := strconv.ParseInt(f[11], 10, 64)
				st, _ := strconv.ParseInt(f[12], 10, 64)
				s.cpu = float64(ut+st) / clockTicks
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			switch k {
			case "VmRSS":
				s.rssKB = n
			case "VmHWM":
				s.peakRSSK = n
			}
		}
	}
	return s
}

// procName returns the command name of pid ("" when it cannot be read).
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// selfCPU returns this process's user + system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
