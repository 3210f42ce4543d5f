package main

import (
	"bufio"
	"encoding/json"
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
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// The hostile suite's tools: a server process it can measure from outside
// (RSS, open descriptors, its log), a raw MQTT client over any net.Conn
// whose methods return errors (so they can run in helper goroutines), and a
// bystander that keeps asking for service while the attacks run.

// hproc is one demo server process under attack.
type hproc struct {
	name     string
	stopOnce sync.Once
	stopTook time.Duration
	cmd      *exec.Cmd
	logPath  string
	tcp, ws  string // 127.0.0.1:port
}

// startHProc starts bin with a one-gate, in-process config whose gate
// settings are settings plus the listen addresses.
func startHProc(t *testing.T, bin, dir, name, level string, settings map[string]any) *hproc {
	t.Helper()
	ports := freePorts(t, 2)
	p := &hproc{name: name, tcp: fmt.Sprintf("127.0.0.1:%d", ports[0]), ws: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	s := map[string]any{"TCPAddr": p.tcp, "WSAddr": p.ws, "SessionCloseListeners": []string{"Chat"}}
	for k, v := range settings {
		s[k] = v
	}
	conf := map[string]any{
		"RPC": map[string]any{"Timeout": "10s"},
		// No heap floor: the memory figures are what the clients cost,
		// not the room the floor gives garbage (up to 32 MiB).
		"GC": map[string]any{"HeapFloorMB": 0},
		"Module": map[string]any{
			"Gate":  []any{map[string]any{"Id": "Gate1", "Host": "127.0.0.1", "ProcessID": "dev", "Settings": s}},
			"Login": []any{map[string]any{"Id": "Login1", "Host": "127.0.0.1", "ProcessID": "dev"}},
			"Chat":  []any{map[string]any{"Id": "Chat1", "Host": "127.0.0.1", "ProcessID": "dev"}},
		},
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	confFile := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p.logPath = filepath.Join(dir, name+".log")
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "-conf", confFile, "-pid", "dev", "-web", "", "-log", level)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop(t)
		logf.Close()
		if !strings.Contains(p.log(), "closing down") {
			t.Errorf("%s log lacks the shutdown line", name)
		}
		if t.Failed() {
			t.Logf("%s log (last 8 KB):\n%s", name, hTail(p.log(), 8<<10))
		}
	})
	waitListening(t, p.tcp, p.ws)
	return p
}

// stop sends SIGINT (Ctrl+C) and waits for a clean exit; it returns how
// long the process took to exit.
func (p *hproc) stop(t testing.TB) time.Duration {
	p.stopOnce.Do(func() {
		start := time.Now()
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s exited with %v", p.name, err)
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
			t.Errorf("%s did not stop on SIGINT", p.name)
		}
		p.stopTook = time.Since(start)
	})
	return p.stopTook
}

func hTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (p *hproc) alive() bool { return p.cmd.Process.Signal(syscall.Signal(0)) == nil }

func (p *hproc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// logLines returns the log lines that contain s.
func (p *hproc) logLines(s string) []string {
	var out []string
	for _, l := range strings.Split(p.log(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// rssKB is the process's resident set, from /proc/PID/status.
func (p *hproc) rssKB(t testing.TB) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	t.Fatalf("%s: no VmRSS", p.name)
	return 0
}

// fds counts the process's open descriptors: its sockets plus a fixed
// number of others.
func (p *hproc) fds(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	return len(es)
}

// hRSSSampler samples the process's RSS every 20 ms until stopped.
type hRSSSampler struct {
	base, peak, after int64
	stop              chan struct{}
	done              chan struct{}
}

func (p *hproc) sampleRSS(t testing.TB) *hRSSSampler {
	s := &hRSSSampler{base: p.rssKB(t), stop: make(chan struct{}), done: make(chan struct{})}
	s.peak = s.base
	pid := p.cmd.Process.Pid
	go func() {
		defer close(s.done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
				if n := hReadRSS(pid); n > s.peak {
					s.peak = n
				}
			}
		}
	}()
	return s
}

func hReadRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// finish stops sampling and records the RSS now.
func (s *hRSSSampler) finish(p *hproc, t testing.TB) {
	close(s.stop)
	<-s.done
	s.after = p.rssKB(t)
	if s.after > s.peak {
		s.peak = s.after
	}
}

// hPoll waits for cond, checking every 10 ms, and reports whether it
// held within d.
func hPoll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// hclient is an MQTT connection driven byte by byte; its methods return
// errors rather than failing the test, so goroutines may use them.
type hclient struct {
	nc      net.Conn
	rd      *packets.Reader
	pending []*packets.Publish
}

func newHClient(nc net.Conn) *hclient {
	rd := packets.NewReader(bufio.NewReader(nc))
	rd.SetMaxSize(packets.MaxRemainingLength)
	return &hclient{nc: nc, rd: rd}
}

// hDialFrom connects to addr from the local IP from ("" for any).
func hDialFrom(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// hDial opens a TCP connection and closes it at the end of the test.
func hDial(t testing.TB, addr, from string) *hclient {
	t.Helper()
	nc, err := hDialFrom(addr, from)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { nc.Close() })
	return newHClient(nc)
}

// hConnect dials and completes CONNECT/CONNACK 0.
func hConnect(t testing.TB, addr, from, id string, keepAlive uint16) *hclient {
	t.Helper()
	c := hDial(t, addr, from)
	if err := c.connect(id, keepAlive); err != nil {
		t.Fatalf("connect %q to %s: %v", id, addr, err)
	}
	return c
}

func hConnectPacket(id string, keepAlive uint16) []byte {
	return (&packets.Connect{ProtocolName: "MQTT", ProtocolLevel: 4, CleanSession: true, KeepAlive: keepAlive, ClientID: id}).AppendTo(nil)
}

// connect sends CONNECT and wants CONNACK 0.
func (c *hclient) connect(id string, keepAlive uint16) error {
	if err := c.write(hConnectPacket(id, keepAlive)); err != nil {
		return err
	}
	code, err := c.connack()
	if err == nil && code != packets.Accepted {
		err = fmt.Errorf("CONNACK %d", code)
	}
	return err
}

// connack reads a CONNACK and returns its code.
func (c *hclient) connack() (byte, error) {
	p, err := c.read(5 * time.Second)
	if err != nil {
		return 0, err
	}
	ack, ok := p.(*packets.Connack)
	if !ok {
		return 0, fmt.Errorf("want CONNACK, got %s", packets.TypeName(p.Type()))
	}
	return ack.ReturnCode, nil
}

func (c *hclient) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

func (c *hclient) read(within time.Duration) (packets.Packet, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(within))
	p, err := c.rd.ReadPacket()
	if pub, ok := p.(*packets.Publish); ok && err == nil {
		return pub.Clone(), nil
	}
	return p, err
}

// publish sends a QoS 0 PUBLISH.
func (c *hclient) publish(topic, payload string) error {
	return c.write(packets.AppendPublish(nil, topic, []byte(payload), 0, 0))
}

// waitPublish returns the first PUBLISH on topic, keeping others.
func (c *hclient) waitPublish(match func(*packets.Publish) bool, within time.Duration) (*packets.Publish, error) {
	for i, p := range c.pending {
		if match(p) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return p, nil
		}
	}
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errors.New("timed out")
		}
		p, err := c.read(left)
		if err != nil {
			return nil, err
		}
		if pub, ok := p.(*packets.Publish); ok {
			if match(pub) {
				return pub, nil
			}
			c.pending = append(c.pending, pub)
		}
	}
}

// request publishes on topic (with a msgid) and returns the reply body.
func (c *hclient) request(topic, payload string) (string, error) {
	if err := c.publish(topic, payload); err != nil {
		return "", err
	}
	p, err := c.waitPublish(func(p *packets.Publish) bool { return p.Topic == topic }, 10*time.Second)
	if err != nil {
		return "", fmt.Errorf("reply on %.80s: %w", topic, err)
	}
	return string(p.Payload), nil
}

// ping sends PINGREQ and waits for PINGRESP, keeping PUBLISHes read meanwhile.
func (c *hclient) ping() error {
	if err := c.write((&packets.Pingreq{}).AppendTo(nil)); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := c.read(time.Until(deadline))
		if err != nil {
			return fmt.Errorf("waiting for PINGRESP: %w", err)
		}
		switch p := p.(type) {
		case *packets.Pingresp:
			return nil
		case *packets.Publish:
			c.pending = append(c.pending, p)
		}
	}
}

// hClosedWithin reads (discarding) until the server closes the connection
// and returns how long after start it did, or false when it stayed open.
func hClosedWithin(nc net.Conn, start time.Time, within time.Duration) (time.Duration, bool) {
	deadline := time.Now().Add(within)
	buf := make([]byte, 32<<10)
	for {
		_ = nc.SetReadDeadline(deadline)
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return 0, false
		}
		return time.Since(start), true
	}
}

// hreply is the gate's reply body.
func hreply(errText, result string) string {
	e, _ := json.Marshal(errText)
	return `{"Error":` + string(e) + `,"Result":` + result + `}`
}

// hfail is the gate's error reply: text, code and a null Result.
func hfail(errText, code string) string {
	e, _ := json.Marshal(errText)
	return `{"Error":` + string(e) + `,"Code":"` + code + `","Result":null}`
}

// hBystander is a Paho client that asks for service every 100 ms while the
// attacks run, recording failures and the slowest reply.
type hBystander struct {
	c       mqtt.Client
	mu      sync.Mutex
	replies map[string]chan string
	n       int
	fails   []string
	slowest time.Duration
	count   int
	stop    chan struct{}
	done    chan struct{}
}

func startHBystander(t *testing.T, addr, id string) *hBystander {
	t.Helper()
	b := &hBystander{replies: map[string]chan string{}, stop: make(chan struct{}), done: make(chan struct{})}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetKeepAlive(5 * time.Second).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			b.mu.Lock()
			ch := b.replies[m.Topic()]
			b.mu.Unlock()
			if ch != nil {
				select {
				case ch <- string(m.Payload()):
				default:
				}
			}
		})
	b.c = mqtt.NewClient(o)
	if tok := b.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bystander connect: %v", tok.Error())
	}
	if err := b.once(id); err != nil {
		t.Fatalf("bystander first request: %v", err)
	}
	go func() {
		defer close(b.done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-b.stop:
				return
			case <-tk.C:
				start := time.Now()
				err := b.once(id)
				b.mu.Lock()
				b.count++
				if err != nil && len(b.fails) < 10 {
					b.fails = append(b.fails, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				b.slowest = max(b.slowest, time.Since(start))
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { b.end(); b.c.Disconnect(0) })
	return b
}

// once logs in as user and checks the exact reply.
func (b *hBystander) once(user string) error {
	b.mu.Lock()
	b.n++
	topic := "Login/Handler_Login/" + strconv.Itoa(b.n)
	ch := make(chan string, 1)
	b.replies[topic] = ch
	b.mu.Unlock()
	defer func() { b.mu.Lock(); delete(b.replies, topic); b.mu.Unlock() }()
	tok := b.c.Publish(topic, 1, false, `{"userName":"`+user+`","passWord":"x"}`)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish: %v", tok.Error())
	}
	select {
	case got := <-ch:
		if want := hreply("", `"login success `+user+`"`); got != want {
			return fmt.Errorf("reply %s, want %s", got, want)
		}
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("no reply in 10s")
	}
}

func (b *hBystander) end() {
	select {
	case <-b.stop:
	default:
		close(b.stop)
	}
	<-b.done
}

// check fails t when the bystander was not served since the last check.
func (b *hBystander) check(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	fails := b.fails
	b.fails = nil
	b.mu.Unlock()
	if len(fails) > 0 {
		t.Errorf("bystander not served: %s", strings.Join(fails, "; "))
	}
	if !b.c.IsConnectionOpen() {
		t.Error("bystander disconnected")
	}
}

// hreport collects the suite's figures for HOSTILE_REPORT.
type hreport struct {
	mu   sync.Mutex
	rows []string
	kv   []string
}

func (r *hreport) rss(name string, s *hRSSSampler, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %+.1f | %s |", name,
		float64(s.base)/1024, float64(s.peak)/1024, float64(s.after)/1024, float64(s.peak-s.base)/1024, note))
}

func (r *hreport) fact(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kv = append(r.kv, fmt.Sprintf(format, args...))
}

func (r *hreport) write(t testing.TB, path string, header string) {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("\n## Memory of the server process (VmRSS, MB)\n\n")
	b.WriteString("| case | baseline | peak | after | peak - baseline | notes |\n| --- | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range r.rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\n## Times and counts\n\n")
	for _, k := range r.kv {
		b.WriteString("- " + k + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Errorf("HOSTILE_REPORT: %v", err)
	}
}
