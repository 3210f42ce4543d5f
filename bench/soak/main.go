package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mqantgen/mqantgen/bench/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	server, conf     string
	conns, roomSize  int
	rate             float64
	duration, warmup time.Duration
	every            time.Duration
	out, svg         string
	quiet            bool
	command          string // as written in the report
}

func run(ctx context.Context, args []string) error {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.StringVar(&o.server, "server", "bin/server", "the demo server binary (go build -o bin/server ./demo/server)")
	fs.StringVar(&o.conf, "conf", "demo/conf/server.conf", "its in-process config; the listeners are moved to free loopback ports")
	fs.IntVar(&o.conns, "conns", 2000, "chatting clients")
	fs.IntVar(&o.roomSize, "room-size", 10, "clients per room")
	fs.Float64Var(&o.rate, "rate", 200, "says per second over all clients")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "time under load, after the warm-up")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "load before the trend is measured (left out of first/last/slope)")
	fs.DurationVar(&o.every, "every", 5*time.Second, "time between samples")
	fs.StringVar(&o.out, "out", "bench/soak.md", "report to write")
	fs.StringVar(&o.svg, "svg", "bench/soak.svg", "plot to write (linked from the report by file name)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.command = "soak " + strings.Join(args, " ")

	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	tcp, ws, pprofAddr := ports[0], ports[1], ports[2]
	conf, err := os.ReadFile(o.conf)
	if err != nil {
		return err
	}
	// make run's config with its listeners on loopback ports of our own.
	text := strings.NewReplacer(`"127.0.0.1:3563"`, `"`+tcp+`"`, `"127.0.0.1:3653"`, `"`+ws+`"`, `"127.0.0.1:8686"`, `""`,
		`":3563"`, `"`+tcp+`"`, `":3653"`, `"`+ws+`"`).Replace(string(conf))
	if !strings.Contains(text, tcp) {
		return fmt.Errorf("%s: no TCPAddr \"127.0.0.1:3563\" to move to %s", o.conf, tcp)
	}
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	confFile := filepath.Join(dir, "server.conf")
	if err := os.WriteFile(confFile, []byte(text), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()

	srv := exec.Command(o.server, "-conf", confFile, "-web", "", "-pprof", pprofAddr, "-log", "warn")
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		return err
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	}()
	if err := waitListening(ctx, exited, tcp, pprofAddr); err != nil {
		return fmt.Errorf("%w; server log:\n%s", err, tail(logFile.Name()))
	}

	s := &sampler{pid: srv.Process.Pid, pprof: pprofAddr, client: &http.Client{Timeout: 5 * time.Second}}
	var (
		mu      sync.Mutex
		phase   = phaseIdle
		samples []sample
		loadAt  time.Duration
		sampErr error
	)
	setPhase := func(p string) {
		mu.Lock()
		phase = p
		if p == phaseLoad {
			loadAt = time.Since(start)
		}
		mu.Unlock()
	}
	sampleNow := func() {
		mu.Lock()
		p := phase
		mu.Unlock()
		x, err := s.take(time.Since(start), p)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if sampErr == nil {
				sampErr = err
			}
			return
		}
		samples = append(samples, x)
		if !o.quiet {
			fmt.Fprintf(os.Stderr, "soak: %6s %-5s rss %6.1f MiB  goroutines %6d  fds %6d\n",
				x.At.Truncate(time.Second), x.Phase, float64(x.RSS)/(1<<20), x.Goroutines, x.FDs)
		}
	}
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		t := time.NewTicker(o.every)
		defer t.Stop()
		sampleNow()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				sampleNow()
			}
		}
	}()

	// Two idle samples, then the load.
	if err := sleep(ctx, 2*o.every, exited); err != nil {
		return err
	}
	setPhase(phaseSetup)
	sampleNow() // a short setup may fall between two ticks
	cfg := loadgen.DefaultConfig()
	cfg.Mode, cfg.URL, cfg.Conns, cfg.RoomSize, cfg.Rate = loadgen.ModeChat, "tcp://"+tcp, o.conns, o.roomSize, o.rate
	cfg.Duration, cfg.Warmup = o.duration, o.warmup
	cfg.ConnectTimeout, cfg.Timeout = 30*time.Second, 10*time.Second
	cfg.OnLoad = func() { setPhase(phaseLoad) }
	sum, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	setPhase(phaseAfter)
	// The clients are gone: see what the server gives back.
	if err := sleep(ctx, 3*o.every, exited); err != nil {
		return err
	}
	close(stopSampling)
	sampling.Wait()
	if sampErr != nil && len(samples) == 0 {
		return sampErr
	}
	var load bytes.Buffer
	_ = sum.WriteText(&load)
	sort.Slice(samples, func(i, j int) bool { return samples[i].At < samples[j].At })
	rep := report{opts: o, samples: samples, loadAt: loadAt, summary: sum, loadText: load.String(), sampleErr: sampErr}
	if err := os.WriteFile(o.svg, []byte(rep.svg()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "soak: wrote %s and %s\n", o.out, o.svg)
	return nil
}

// sleep waits d, or fails when ctx ends or the server exits.
func sleep(ctx context.Context, d time.Duration, exited <-chan error) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case err := <-exited:
		return fmt.Errorf("the server exited: %v", err)
	}
}

// waitListening polls until every address accepts connections.
func waitListening(ctx context.Context, exited <-chan error, addrs ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not listening after 30s: %v", a, err)
			}
			if err := sleep(ctx, 50*time.Millisecond, exited); err != nil {
				return err
			}
		}
	}
	return nil
}

// freePorts returns n loopback addresses that were free a moment ago.
func freePorts(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
