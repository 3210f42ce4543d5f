package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

// TestPrometheusScrapesCluster: a real Prometheus server (Debian's, on its
// own port and data dir) scrapes the admin listeners of both gates of the
// cluster demo, four real processes over a private broker, each gate given
// its own listener with -admin; while Paho clients send requests through
// both gates, Prometheus answers rate() queries over its HTTP API with a
// rate above zero for each gate.
func TestPrometheusScrapesCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker, four processes and Prometheus; skipped with -short")
	}
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("Prometheus server missing (%v): scripts/deps.sh installs Debian's prometheus, make test runs it", err)
	}
	// Prometheus first, the build meanwhile: its first scrapes fail until
	// the gates are up, but its target discovery (about 5 s) and the
	// build overlap the broker's start.
	dir := t.TempDir()
	free := freePorts(t, 3)
	admin1, admin2 := fmt.Sprintf("127.0.0.1:%d", free[0]), fmt.Sprintf("127.0.0.1:%d", free[1])
	promAddr := fmt.Sprintf("127.0.0.1:%d", free[2])
	startPrometheus(t, promBin, dir, promAddr, admin1, admin2)
	bin := filepath.Join(dir, "server")
	built := make(chan error, 1)
	go func() {
		out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput()
		if err != nil {
			err = fmt.Errorf("build: %v\n%s", err, out)
		}
		built <- err
	}()
	broker := rabbittest.StartT(t)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	confFile, ports := writeClusterConfig(t, dir, broker.URI, 1)

	out, err := exec.Command(bin, "-conf", confFile, "-pid", "gate1", "-admin", "8686").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-admin: want host:port") {
		t.Fatalf("-admin without a host:port: %v, %s; want it refused", err, out)
	}
	for _, p := range []struct{ pid, admin string }{{"login", "off"}, {"chat", "off"}, {"gate1", admin1}, {"gate2", admin2}} {
		startServer(t, dir, p.pid, bin, "-conf", confFile, "-pid", p.pid, "-web", "", "-admin", p.admin)
	}
	gate1, gate2 := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	waitListening(t, gate1, gate2, admin1, admin2)

	alice := mqtttest.NewPaho(t, "tcp://"+gate1, "alice")
	bob := mqtttest.NewPaho(t, "tcp://"+gate2, "bob")
	// Login may still be connecting to the broker: retry until served.
	mqtttest.Poll(t, "Login reachable across processes", func() bool {
		return alice.Request("Login/Handler_Login", 1, `{"userName":"alice","passWord":"x"}`).Error == ""
	})
	api := "http://" + promAddr + "/api/v1/"
	pollFor(t, 25*time.Second, "Prometheus sees both gates up", func() (bool, string) {
		var targets struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := promGet(api+"targets", &targets); err != nil {
			return false, err.Error()
		}
		up := map[string]bool{}
		for _, tg := range targets.ActiveTargets {
			up[tg.Labels["instance"]] = tg.Health == "up"
		}
		return up[admin1] && up[admin2], fmt.Sprintf("%+v", targets.ActiveTargets)
	})
	// Requests through both gates until Prometheus has two scrapes of each
	// with the counters apart: rate() is then above zero.
	queries := []string{
		`sum by (gate) (rate(mqant_gate_requests_total[5s]))`,
		`sum by (instance) (rate(mqant_rpc_calls_total{module="Login",outcome="ok"}[5s]))`,
	}
	for i, q := range queries {
		label := [...]string{"gate", "instance"}[i]
		want := map[string]bool{"Gate1": true, "Gate2": true}
		if label == "instance" {
			want = map[string]bool{admin1: true, admin2: true}
		}
		pollFor(t, 20*time.Second, q+" > 0 for both gates", func() (bool, string) {
			alice.Must("Login/Handler_Login", `{"userName":"alice","passWord":"x"}`)
			bob.Must("Login/Handler_Login", `{"userName":"bob","passWord":"x"}`)
			var res struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			}
			if err := promGet(api+"query?"+url.Values{"query": {q}}.Encode(), &res); err != nil {
				return false, err.Error()
			}
			above := 0
			for _, r := range res.Result {
				s, _ := r.Value[1].(string)
				if v, err := strconv.ParseFloat(s, 64); err == nil && v > 0 && want[r.Metric[label]] {
					above++
				}
			}
			return above == len(want), fmt.Sprintf("%+v", res.Result)
		})
	}
}

// startPrometheus runs Prometheus on addr with its own data dir and a
// config scraping targets every second. It is stopped (SIGTERM, then
// killed) at the end of the test, and dies with the test process.
func startPrometheus(t *testing.T, bin, dir, addr string, targets ...string) {
	t.Helper()
	conf := filepath.Join(dir, "prometheus.yml")
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	yml := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"+
		"  - job_name: mqant\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("Prometheus did not stop on SIGTERM")
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	pollFor(t, 20*time.Second, "Prometheus ready", func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("Prometheus exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// promGet reads one answer of Prometheus's HTTP API into data.
func promGet(u string, data any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s: %s: %v", u, resp.Status, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s: %s", u, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// pollFor calls cond every 200 ms until it holds, failing the test at the
// deadline with cond's last word.
func pollFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", within, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
