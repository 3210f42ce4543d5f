package scripts

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// TestRunClusterRestarts runs scripts/run-cluster.sh on free ports, kills
// gate1 with SIGKILL and checks that gate2 kept serving its connection
// meanwhile, that the script logged the exit and started a new gate1, and
// that the new one serves a login; then SIGINT stops the script and every
// process it started, the broker's included.
func TestRunClusterRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts RabbitMQ and four processes; skipped with -short")
	}
	ports := freePorts(t, 5)
	dir, bin := filepath.Join(t.TempDir(), "cluster"), filepath.Join(t.TempDir(), "bin")
	marker := "MQANT_RUNCLUSTER_TEST=" + dir // every descendant inherits it: how we find leftovers
	cmd := exec.Command("bash", "run-cluster.sh")
	cmd.Env = append(os.Environ(), marker, "CLUSTER_DIR="+dir, "CLUSTER_BIN="+bin, "WEB_ADDR=", "ADMIN_ADDR=",
		"RESTART_BACKOFF=2", fmt.Sprintf("BROKER_PORT=%d", ports[0]),
		fmt.Sprintf("GATE1_TCP=%d", ports[1]), fmt.Sprintf("GATE1_WS=%d", ports[2]),
		fmt.Sprintf("GATE2_TCP=%d", ports[3]), fmt.Sprintf("GATE2_WS=%d", ports[4]))
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		for _, p := range leftovers(marker) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("run-cluster.sh output:\n%s", out.String())
		}
	})

	gate1 := fmt.Sprintf("127.0.0.1:%d", ports[1])
	gate2 := fmt.Sprintf("127.0.0.1:%d", ports[3])
	// Building, the broker's boot and the processes' broker wait: minutes
	// on a loaded machine.
	poll(t, 3*time.Minute, "gate1 and gate2 serving a login", func() error {
		if err := login(gate1, "alice"); err != nil {
			return err
		}
		return login(gate2, "bob")
	}, exited)

	old := startedPid(t, &out, "gate1")
	held, err := connect(gate2, "carol")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// While gate1 is down (2 s backoff), gate2 and Login keep serving.
	if err := request(held, "carol", 1); err != nil {
		t.Fatalf("gate2's connection after gate1 was killed: %v", err)
	}
	out.WaitFor(t, fmt.Sprintf("cluster: %d exited (status 137); restarting in 2s", old), 30*time.Second)
	poll(t, time.Minute, "a new gate1", func() error {
		if p := startedPid(t, &out, "gate1"); p == old {
			return errors.New("not started again yet")
		}
		return nil
	}, exited)
	poll(t, 2*time.Minute, "the new gate1 serving a login", func() error { return login(gate1, "alice") }, exited)
	if err := request(held, "carol", 2); err != nil {
		t.Fatalf("gate2's connection after gate1 came back: %v", err)
	}
	if n := strings.Count(out.String(), "cluster: started gate1"); n != 2 {
		t.Errorf("gate1 started %d times, want 2", n)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("run-cluster.sh after SIGINT: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("run-cluster.sh did not stop within 90s of SIGINT")
	}
	if !strings.Contains(out.String(), "cluster: stopped") {
		t.Error(`no "cluster: stopped" line`)
	}
	if n := strings.Count(out.String(), "restarting in"); n != 1 {
		t.Errorf("%d restarts logged, want 1 (none during the shutdown)", n)
	}
	if left := leftovers(marker); len(left) > 0 {
		t.Errorf("processes left after SIGINT: %v", describe(left))
	}
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after the stop", p)
		}
	}
}

// poll calls try until it succeeds, failing after within or when the script
// exits.
func poll(t *testing.T, within time.Duration, what string, try func() error, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		select {
		case e := <-exited:
			t.Fatalf("run-cluster.sh exited (%v) while waiting for %s", e, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var startedRE = regexp.MustCompile(`cluster: started (\w+) \(pid (\d+)\)`)

// startedPid returns the pid of the latest start of name the script
// logged.
func startedPid(t *testing.T, out *syncbuf.Buffer, name string) int {
	t.Helper()
	pid := 0
	for _, m := range startedRE.FindAllStringSubmatch(out.String(), -1) {
		if m[1] == name {
			pid, _ = strconv.Atoi(m[2])
		}
	}
	if pid == 0 {
		t.Fatalf("no start of %s logged", name)
	}
	return pid
}

// login connects to a gate, logs user in and disconnects.
func login(addr, user string) error {
	c, err := connect(addr, user)
	if err != nil {
		return err
	}
	defer c.Close()
	return request(c, user, 1)
}

type client struct {
	net.Conn
	rd *packets.Reader
}

func connect(addr, user string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	c := &client{Conn: nc, rd: packets.NewReader(bufio.NewReader(nc))}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	conn := &packets.Connect{ProtocolName: packets.ProtocolNameV311, ProtocolLevel: packets.ProtocolLevelV311,
		CleanSession: true, KeepAlive: 60, ClientID: "runcluster-" + user}
	if _, err := nc.Write(conn.AppendTo(nil)); err != nil {
		nc.Close()
		return nil, err
	}
	p, err := c.rd.ReadPacket()
	if ack, ok := p.(*packets.Connack); err != nil || !ok || ack.ReturnCode != packets.Accepted {
		nc.Close()
		return nil, fmt.Errorf("CONNECT to %s: %v %v", addr, p, err)
	}
	return c, nil
}

// request logs user in on c with msgid id and checks the gate's reply.
func request(c *client, user string, id int) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	topic := fmt.Sprintf("Login/Handler_Login/%d", id)
	body := fmt.Sprintf(`{"userName":%q,"passWord":"x"}`, user)
	if _, err := c.Write(packets.AppendPublish(nil, topic, []byte(body), 0, 0)); err != nil {
		return err
	}
	for {
		p, err := c.rd.ReadPacket()
		if err != nil {
			return fmt.Errorf("waiting for the reply on %s: %w", topic, err)
		}
		pub, ok := p.(*packets.Publish)
		if !ok || pub.Topic != topic {
			continue
		}
		var rep struct {
			Result any
			Error  string
		}
		if err := json.Unmarshal(pub.Payload, &rep); err != nil || rep.Error != "" || rep.Result != "login success "+user {
			return fmt.Errorf("reply %s", pub.Payload)
		}
		return nil
	}
}

// leftovers returns the processes whose environment holds marker.
func leftovers(marker string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == marker {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func describe(pids []int) []string {
	var out []string
	for _, p := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		out = append(out, fmt.Sprintf("%d %s", p, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))
	}
	return out
}

// freePorts returns n ports below the ephemeral range that were free a
// moment ago: the script binds them a minute later, after its builds.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	ports, err := rabbittest.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}
