package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyTimeout = 60 * time.Second // boot takes 5-7 s idle, ~20 s on a loaded machine
	stopTimeout  = 30 * time.Second // graceful stop takes ~3 s
	ctlTimeout   = 60 * time.Second
)

// binDir holds rabbitmq-server and rabbitmqctl. It is the unwrapped copy:
// /usr/sbin/rabbitmq-server switches to the rabbitmq user.
var binDir = "/usr/lib/rabbitmq/bin"

// ErrNotInstalled is returned when the rabbitmq-server package is missing.
var ErrNotInstalled = errors.New("rabbittest: RabbitMQ is not installed: apt-get install -y rabbitmq-server")

// ErrPortInUse is returned when a port the broker needs is taken.
var ErrPortInUse = errors.New("rabbittest: port in use")

// Broker is a private RabbitMQ broker listening on 127.0.0.1.
type Broker struct {
	URI  string // amqp://guest:guest@127.0.0.1:Port/
	Port int    // AMQP port
	Node string // Erlang node name, rt<Port>@localhost
	Dir  string // config, data (mnesia/), logs (log/, broker.out), HOME (home/), cwd (run/)

	mu        sync.Mutex
	distPort  int   // Erlang distribution, 127.0.0.1 only
	epmdPort  int   // private epmd, 127.0.0.1 only
	server    *proc // rabbitmq-server script and beam.smp; nil when stopped
	epmd      *proc // our own epmd, so it cannot outlive us as a daemon
	outStart  int64 // offset in broker.out where the current run begins
	stopped   bool  // Stop was called
	stopErr   error
	extraConf string // appended to rabbitmq.conf; lets tests break the boot
}

// Start starts a broker in dir (created if needed) on free loopback ports and
// returns once it accepts AMQP connections.
func Start(dir string) (*Broker, error) { return StartOn(dir, 0) }

// StartOn is Start on a given AMQP port; port 0 picks a free one. The node
// name follows the port, so a broker started again with the same dir and port
// finds its data (users, durable queues) again.
func StartOn(dir string, port int) (*Broker, error) { return startOn(dir, port, nil) }

// StartListening is Start with the broker also listening, on the same
// port, on each of the given IP addresses (the network-namespace test's
// hosts reach it there). The guest user stays loopback-only: add a user
// with AddUser for those clients.
func StartListening(dir string, ips ...string) (*Broker, error) { return startOn(dir, 0, ips) }

func startOn(dir string, port int, ips []string) (*Broker, error) {
	if err := checkInstalled(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("rabbittest: %w", err)
	}
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		b := newBroker(dir, p)
		for i, ip := range ips {
			b.extraConf += fmt.Sprintf("listeners.tcp.%d = %s\n", i+2, net.JoinHostPort(ip, strconv.Itoa(p)))
		}
		b.mu.Lock()
		err = b.start()
		b.mu.Unlock()
		// A port chosen here can be taken between the check and the
		// broker's bind; choose again.
		if err == nil {
			return b, nil
		}
		if port != 0 || attempt == 3 || !errors.Is(err, ErrPortInUse) {
			return nil, err
		}
	}
}

func newBroker(dir string, port int) *Broker {
	return &Broker{
		URI:  fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port),
		Port: port,
		Node: fmt.Sprintf("rt%d@localhost", port),
		Dir:  dir,
	}
}

func checkInstalled() error {
	for _, name := range []string{"rabbitmq-server", "rabbitmqctl"} {
		if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
			return fmt.Errorf("%w (%v)", ErrNotInstalled, err)
		}
	}
	return nil
}

// StopBroker stops the broker process and its epmd but keeps Port, Node and
// Dir, for tests of a broker that goes away. StartAgain brings it back.
// Stopping a stopped broker does nothing.
func (b *Broker) StopBroker() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopLocked()
}

// StartAgain starts the broker again after StopBroker, on the same AMQP port
// and with the same data, and returns once it accepts connections. It does
// nothing when the broker runs.
func (b *Broker) StartAgain() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return fmt.Errorf("rabbittest: broker %s was stopped for good", b.Node)
	}
	if b.server != nil {
		return nil
	}
	return b.start()
}

// Restart is StopBroker then StartAgain.
func (b *Broker) Restart() error {
	if err := b.StopBroker(); err != nil {
		return err
	}
	return b.StartAgain()
}

// Stop stops the broker and its epmd for good and makes sure no process of
// theirs is left. It keeps Dir. Calling it again returns the first result.
func (b *Broker) Stop() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.stopped = true
		b.stopErr = b.stopLocked()
	}
	return b.stopErr
}

// Done returns a channel closed when the current broker process exits, for
// whatever reason; nil when it is not running.
func (b *Broker) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.server == nil {
		return nil
	}
	return b.server.done
}

// AddUser creates a user with full permissions on vhost "/". The guest user
// may only connect over loopback; other hosts and network namespaces need
// one of these.
func (b *Broker) AddUser(name, password string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.server == nil {
		return fmt.Errorf("rabbittest: AddUser: broker %s is not running", b.Node)
	}
	if err := b.ctl("add_user", name, password); err != nil {
		return err
	}
	return b.ctl("set_permissions", "-p", "/", name, ".*", ".*", ".*")
}

// LogTail returns the first and last lines the current (or last) broker run
// wrote to stdout and stderr, which include its log.
func (b *Broker) LogTail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return excerpt(runLog(b.path("broker.out"), b.outStart))
}

func (b *Broker) path(elem ...string) string {
	return filepath.Join(append([]string{b.Dir}, elem...)...)
}

// start launches the broker and waits until it is ready. b.mu is held.
func (b *Broker) start() error {
	if !portFree(b.Port) {
		return fmt.Errorf("%w: AMQP port %d on 127.0.0.1", ErrPortInUse, b.Port)
	}
	// Keep the previous dist and epmd ports when they are still free.
	if b.distPort == 0 || !portFree(b.distPort) {
		p, err := freePort(b.Port, b.epmdPort)
		if err != nil {
			return err
		}
		b.distPort = p
	}
	if b.epmdPort == 0 || !portFree(b.epmdPort) {
		p, err := freePort(b.Port, b.distPort)
		if err != nil {
			return err
		}
		b.epmdPort = p
	}
	if err := b.writeFiles(); err != nil {
		return fmt.Errorf("rabbittest: %w", err)
	}

	out, err := os.OpenFile(b.path("broker.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("rabbittest: %w", err)
	}
	defer out.Close() // the child has its own descriptor
	fmt.Fprintf(out, "\n=== rabbittest: starting %s on 127.0.0.1:%d (dist %d, epmd %d) at %s ===\n",
		b.Node, b.Port, b.distPort, b.epmdPort, time.Now().Format(time.RFC3339))
	if fi, err := out.Stat(); err == nil {
		b.outStart = fi.Size()
	}

	// epmd runs in the foreground as our child, not as the daemon Erlang
	// would start: a daemon outlives a test binary that dies, this one
	// gets SIGKILL with it. Once it listens, the broker and rabbitmqctl
	// use it instead of starting their own.
	epmd := exec.Command(epmdPath(), "-port", strconv.Itoa(b.epmdPort), "-address", "127.0.0.1")
	if b.epmd, err = b.launch(epmd, out, syscall.SIGKILL); err != nil {
		return err
	}
	if err := b.waitEpmd(); err != nil {
		return errors.Join(err, b.stopLocked())
	}

	// A file, not a pipe, for output: grandchildren could hold a pipe open
	// and make Wait hang. SIGTERM when we die goes to the script, whose
	// trap stops beam.smp cleanly.
	server := exec.Command(filepath.Join(binDir, "rabbitmq-server"))
	if b.server, err = b.launch(server, out, syscall.SIGTERM); err != nil {
		return errors.Join(err, b.stopLocked())
	}
	if err := b.waitReady(); err != nil {
		return errors.Join(err, b.stopLocked())
	}
	return nil
}

// proc is a child process in its own process group.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// launch starts cmd in the broker's environment and run/ directory (where
// erl_crash.dump lands) in a new process group; the kernel sends it
// deathSig when we die.
func (b *Broker) launch(cmd *exec.Cmd, out *os.File, deathSig syscall.Signal) (*proc, error) {
	cmd.Dir = b.path("run")
	cmd.Env = b.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
	if err := startOnSpawner(cmd); err != nil {
		return nil, fmt.Errorf("rabbittest: start %s: %w", cmd.Path, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends sig to p's process group and waits for p to exit, killing the
// group after timeout.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) error {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, sig)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("rabbittest: %s ignored %v for %v; killed it", p.cmd.Path, sig, timeout)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("rabbittest: %s (pid %d) survives SIGKILL", p.cmd.Path, pgid)
	}
}

func epmdPath() string {
	if p, err := exec.LookPath("epmd"); err == nil {
		return p
	}
	return "/usr/lib/erlang/bin/epmd"
}

// waitEpmd waits until our epmd listens. b.mu is held.
func (b *Broker) waitEpmd() error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.epmdPort))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-b.epmd.done:
			return fmt.Errorf("%w: epmd on %s exited (%v):\n%s", ErrPortInUse, addr, b.epmd.cmd.ProcessState,
				excerpt(runLog(b.path("broker.out"), b.outStart)))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rabbittest: epmd not listening on %s after 10s", addr)
		}
	}
}

func (b *Broker) writeFiles() error {
	for _, d := range []string{"home", "run", "mnesia", "log"} {
		if err := os.MkdirAll(b.path(d), 0o755); err != nil {
			return err
		}
	}
	conf := fmt.Sprintf("listeners.tcp.1 = 127.0.0.1:%d\n%s", b.Port, b.extraConf)
	if err := os.WriteFile(b.path("rabbitmq.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	return os.WriteFile(b.path("enabled_plugins"), []byte("[].\n"), 0o644)
}

// env is the environment of the broker and of rabbitmqctl: the caller's,
// minus anything that would steer RabbitMQ or Erlang elsewhere.
func (b *Broker) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "HOME", k == "NOTIFY_SOCKET", // NOTIFY_SOCKET makes the script act as under systemd
			strings.HasPrefix(k, "RABBITMQ_"), strings.HasPrefix(k, "ERL_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"HOME="+b.path("home"), // .erlang.cookie; never the caller's HOME
		"RABBITMQ_NODENAME="+b.Node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(b.Port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(b.distPort),
		"RABBITMQ_MNESIA_BASE="+b.path("mnesia"),
		"RABBITMQ_LOG_BASE="+b.path("log"),
		"RABBITMQ_PID_FILE="+b.path("broker.pid"),
		"RABBITMQ_CONFIG_FILE="+b.path("rabbitmq.conf"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+b.path("enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE=/dev/null",
		// Distribution listens on 0.0.0.0 unless told otherwise.
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		// Several brokers share two cores with the tests: no scheduler
		// pinning, no busy-waiting.
		"RABBITMQ_SCHEDULER_BIND_TYPE=u",
		"RABBITMQ_SCHEDULER_BUSY_WAIT_THRESHOLD=none",
		"ERL_EPMD_PORT="+strconv.Itoa(b.epmdPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

// waitReady polls the AMQP port until it accepts a connection, failing fast
// when the broker exits. b.mu is held.
func (b *Broker) waitReady() error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port))
	deadline := time.Now().Add(readyTimeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-b.server.done:
			logs := runLog(b.path("broker.out"), b.outStart)
			err := fmt.Errorf("rabbittest: broker %s exited while booting (%v); from %s:\n%s",
				b.Node, b.server.cmd.ProcessState, b.path("broker.out"), excerpt(logs))
			if strings.Contains(logs, "eaddrinuse") || strings.Contains(logs, "already_used") {
				err = fmt.Errorf("%w: %w", ErrPortInUse, err)
			}
			return err
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rabbittest: broker %s not listening on %s after %v; from %s:\n%s",
				b.Node, addr, readyTimeout, b.path("broker.out"), excerpt(runLog(b.path("broker.out"), b.outStart)))
		}
	}
}

// stopLocked stops the broker, then its epmd, then makes sure nothing of
// theirs is left. b.mu is held.
func (b *Broker) stopLocked() error {
	var errs []error
	var pgids []int
	if b.server != nil {
		// The script traps SIGTERM and stops beam.smp, which also gets it
		// and shuts down cleanly.
		pgids = append(pgids, b.server.cmd.Process.Pid)
		errs = append(errs, b.server.stop(syscall.SIGTERM, stopTimeout))
		b.server = nil
	}
	if b.epmd != nil {
		pgids = append(pgids, b.epmd.cmd.Process.Pid)
		errs = append(errs, b.epmd.stop(syscall.SIGTERM, 5*time.Second))
		b.epmd = nil
	}
	errs = append(errs, b.reap(pgids))
	return errors.Join(errs...)
}

// reap waits for every process of the broker to exit, killing any still
// there after a grace period.
func (b *Broker) reap(pgids []int) error {
	grace := time.Now().Add(3 * time.Second)
	deadline := grace.Add(5 * time.Second)
	for {
		left := findProcs(pgids, b.markers())
		if len(left) == 0 {
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("rabbittest: processes of broker %s still alive after SIGKILL: %s", b.Node, describe(left))
		}
		if now.After(grace) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// markers are environment entries that only this broker's processes
// (beam.smp, epmd, rabbitmqctl) carry.
func (b *Broker) markers() []string {
	return []string{"RABBITMQ_NODENAME=" + b.Node, "ERL_EPMD_PORT=" + strconv.Itoa(b.epmdPort)}
}

// ctl runs rabbitmqctl against the broker. b.mu is held.
func (b *Broker) ctl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rabbitmqctl"), append([]string{"-n", b.Node}, args...)...)
	cmd.Env = b.env()
	cmd.Dir = b.path("run")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbittest: rabbitmqctl %s: %w\n%s", args[0], err, out)
	}
	return nil
}
