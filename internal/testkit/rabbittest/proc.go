package rabbittest

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// spawnc carries process starts to one goroutine locked to its OS thread
// for good. The kernel sends Pdeathsig when the thread that started a child
// exits, not the process (golang.org/issue/27505), and Go ends a thread when
// a goroutine locked to it exits. Started in init, so goroutine leak checks
// never see it appear during a test.
var spawnc = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawnc {
			f()
		}
	}()
}

// startOnSpawner is cmd.Start from the spawner thread.
func startOnSpawner(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	spawnc <- func() { errc <- cmd.Start() }
	return <-errc
}

// FreePorts returns n distinct ports free a moment ago, picked below the
// ephemeral range (see freePort): for tests that hand ports to processes
// which bind them much later, when outgoing connections would often have
// taken a port from the ephemeral range meanwhile.
func FreePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		p, err := freePort(ports...)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// freePort returns a port free on every local address, other than exclude.
// It picks below the ephemeral range, so outgoing connections do not take a
// broker's port while it is down between StopBroker and StartAgain.
func freePort(exclude ...int) (int, error) {
	lo, hi := 10000, ephemeralLow()
	if hi-lo >= 1000 {
		for range 200 {
			p := lo + rand.IntN(hi-lo)
			if !slices.Contains(exclude, p) && portFree(p) {
				return p, nil
			}
		}
	}
	for range 20 { // odd port range: let the kernel choose
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("rabbittest: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !slices.Contains(exclude, p) && portFree(p) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: found no free port", ErrPortInUse)
}

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// portFree reports whether port can be bound on the wildcard address, which
// fails when anything listens on it on any address, IPv4 or IPv6.
func portFree(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// findProcs returns the live processes that are in one of pgids or carry
// one of markers in their environment.
func findProcs(pgids []int, markers []string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if !ok || state == 'Z' || state == 'X' { // zombies are dead, only not yet reaped
			continue
		}
		if slices.Contains(pgids, pgrp) {
			pids = append(pids, pid)
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		env = append([]byte{0}, env...)
		for _, m := range markers {
			if bytes.Contains(env, []byte("\x00"+m+"\x00")) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// procStat reads the state and process group from /proc/PID/stat.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// The command name is in parentheses and may contain anything.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:])) // state ppid pgrp ...
	if len(f) < 3 || len(f[0]) != 1 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0][0], pgrp, err == nil
}

// describe lists pids with their command lines.
func describe(pids []int) string {
	var sb strings.Builder
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		s := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if len(s) > 120 {
			s = s[:120] + "..."
		}
		fmt.Fprintf(&sb, "\n  %d %s", pid, s)
	}
	return sb.String()
}

// runLog returns what a broker run wrote to file from offset on, at most
// the last 1 MB.
func runLog(file string, offset int64) string {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const max = 1 << 20
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > max {
		offset = fi.Size() - max
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimRight(string(b), "\n")
}

// excerpt keeps the first and last lines of log. A failed boot states its
// reason first and ends with crash reports, so both ends matter.
func excerpt(log string) string {
	const head, tail = 20, 30
	lines := strings.Split(log, "\n")
	if len(lines) <= head+tail+1 {
		return log
	}
	skipped := fmt.Sprintf("[... %d lines ...]", len(lines)-head-tail)
	return strings.Join(slices.Concat(lines[:head], []string{skipped}, lines[len(lines)-tail:]), "\n")
}
