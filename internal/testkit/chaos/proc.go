package chaos

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is a server process a test may kill, interrupt and start again.
// Each run logs to its own file, dir/name.N.log, so a killed run's log
// stays for the test to read.
type Proc struct {
	t    testing.TB
	Name string
	dir  string
	bin  string
	args []string

	mu   sync.Mutex
	runs []string      // log file of each run, oldest first
	cmd  *exec.Cmd     // nil when not running
	done chan struct{} // closed when cmd has exited
	werr error         // cmd.Wait's result, read after done
}

// StartProc starts bin with args as process name, logging under dir. When
// the test ends the process gets SIGINT and must exit cleanly within 20 s
// and log "closing down"; its logs are shown when the test failed.
func StartProc(t testing.TB, dir, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Name: name, dir: dir, bin: bin, args: args}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)
	return p
}

// Start starts a new run. It fails when one is running.
func (p *Proc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.Name)
	}
	path := filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.Name, len(p.runs)+1))
	logf, err := os.Create(path)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies, so do its servers.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	p.runs = append(p.runs, path)
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.werr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Kill sends SIGKILL and waits until the process has exited.
func (p *Proc) Kill() error {
	return p.stop(syscall.SIGKILL, 10*time.Second, false)
}

// Interrupt sends SIGINT (Ctrl+C) and waits up to within for a clean exit;
// it fails when the process exits non-zero or does not exit in time (it is
// then killed).
func (p *Proc) Interrupt(within time.Duration) error {
	return p.stop(syscall.SIGINT, within, true)
}

func (p *Proc) stop(sig syscall.Signal, within time.Duration, clean bool) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("%s: not running", p.Name)
	}
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-done:
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("%s did not exit within %v of %v; killed", p.Name, within, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && clean && p.werr != nil {
		err = fmt.Errorf("%s exited with %v after %v", p.Name, p.werr, sig)
	}
	p.cmd = nil
	return err
}

// Running reports whether a run is in progress.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Pid returns the operating system's id of the current run, 0 when none
// runs: broker connection names carry it.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Logs returns the log file of every run so far, oldest first.
func (p *Proc) Logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.runs...)
}

// WaitLog waits up to within for the current run to log a line containing
// every one of subs, and returns the time in that line (slog's time=
// field), or the time it was seen when the line has none. It fails fast
// when the process exits.
func (p *Proc) WaitLog(within time.Duration, subs ...string) (time.Time, error) {
	p.mu.Lock()
	done := p.done
	path := p.runs[len(p.runs)-1]
	p.mu.Unlock()
	deadline := time.Now().Add(within)
	for {
		if at, ok := findLine(path, subs); ok {
			return at, nil
		}
		select {
		case <-done:
			if at, ok := findLine(path, subs); ok {
				return at, nil
			}
			return time.Time{}, fmt.Errorf("%s exited before logging %q:\n%s", p.Name, subs, tail(path, 30))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s did not log %q within %v:\n%s", p.Name, subs, within, tail(path, 30))
		}
	}
}

// LogTimes returns the time of every line, in every run's log, that
// contains each one of subs.
func (p *Proc) LogTimes(subs ...string) []time.Time {
	var out []time.Time
	for _, path := range p.Logs() {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
	next:
		for _, line := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if !strings.Contains(line, s) {
					continue next
				}
			}
			if at, ok := LineTime(line); ok {
				out = append(out, at)
			}
		}
	}
	return out
}

func findLine(path string, subs []string) (time.Time, bool) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		if at, ok := LineTime(line); ok {
			return at, true
		}
		return time.Now(), true
	}
	return time.Time{}, false
}

// Warnings returns the lines at level WARN or ERROR that the process logged
// between from and to, in every run, at most max of them.
func (p *Proc) Warnings(from, to time.Time, max int) []string {
	var out []string
	for _, path := range p.Logs() {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, " level=WARN ") && !strings.Contains(line, " level=ERROR ") {
				continue
			}
			if at, ok := LineTime(line); !ok || at.Before(from) || at.After(to) {
				continue
			}
			if len(out) == max {
				return append(out, "...")
			}
			out = append(out, line)
		}
	}
	return out
}

// LineTime returns the time= field of a slog text line.
func LineTime(line string) (time.Time, bool) {
	const key = "time="
	if !strings.HasPrefix(line, key) {
		return time.Time{}, false
	}
	v, _, _ := strings.Cut(line[len(key):], " ")
	at, err := time.Parse(time.RFC3339Nano, v)
	return at, err == nil
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *Proc) cleanup() {
	t := p.t
	if p.Running() {
		if err := p.Interrupt(20 * time.Second); err != nil {
			t.Error(err)
		} else if runs := p.Logs(); len(runs) > 0 {
			if b, _ := os.ReadFile(runs[len(runs)-1]); !strings.Contains(string(b), "closing down") {
				t.Errorf("%s log lacks the shutdown line", p.Name)
			}
		}
	}
	if t.Failed() {
		for _, path := range p.Logs() {
			t.Logf("%s (last lines):\n%s", path, tail(path, 40))
		}
	}
}
