package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqantgen/mqantgen/internal/testkit/browsertest"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

const chromiumPath = browsertest.ChromiumPath

// TestConsoleInBrowser runs the cluster demo as four real processes on a
// private broker, the gates with admin listeners of their own (-admin)
// and a token, and opens gate1's console in headless Chromium: it shows
// every process (gathered through the broker), both gates with their
// connections and online users, and the request counter of
// Login/Handler_Login moves while a client logs in. The screenshot goes
// to $CONSOLE_SCREENSHOT, or the test's temporary directory.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker, four processes and a browser; skipped with -short")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install the chromium package (apt-get install -y chromium)", chromiumPath, err)
	}
	broker := rabbittest.StartT(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-race", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	confFile, ports := writeClusterConfig(t, dir, broker.URI, 1)
	addToken(t, confFile, "t0ken")
	admin := freePorts(t, 2)
	admin1, admin2 := fmt.Sprintf("127.0.0.1:%d", admin[0]), fmt.Sprintf("127.0.0.1:%d", admin[1])
	for _, pid := range []string{"login", "chat"} {
		startServer(t, dir, pid, bin, "-conf", confFile, "-pid", pid, "-web", "")
	}
	startServer(t, dir, "gate1", bin, "-conf", confFile, "-pid", "gate1", "-web", "", "-admin", admin1)
	startServer(t, dir, "gate2", bin, "-conf", confFile, "-pid", "gate2", "-web", "", "-admin", admin2)
	gate1, gate2 := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[2])
	waitListening(t, gate1, gate2, admin1, admin2)

	alice := mqtttest.NewPaho(t, "tcp://"+gate1, "alice")
	mqtttest.Poll(t, "Login reachable across processes", func() bool {
		return alice.Request("Login/Handler_Login", 1, `{"userName":"alice","passWord":"x"}`).Error == ""
	})
	bob := mqtttest.NewPaho(t, "tcp://"+gate2, "bob")
	bob.Must("Login/Handler_Login", `{"userName":"bob","passWord":"x"}`)

	p := openConsole(t, "http://"+admin1+"/console/#token=t0ken")
	p.waitJS("every process and both gates on gate1's console", `(() => {
		const procs = [...document.querySelectorAll('section.proc:not(.stale)')].map(s => s.dataset.process).sort().join(' ');
		const users = g => { const c = document.querySelector('tr[data-gate="' + g + '"] .users'); return c ? +c.textContent : -1; };
		return procs === 'chat gate1 gate2 login' && users('Gate1') === 1 && users('Gate2') === 1;
	})()`)
	counter := `(() => { const c = document.querySelector('section[data-process="login"] tr[data-handler="Login/Handler_Login"] .calls'); return c ? +c.textContent : -1; })()`
	var before int
	p.eval(counter, &before)
	if before < 2 {
		t.Fatalf("Login/Handler_Login counter = %d before; alice and bob logged in", before)
	}
	for i := range 5 {
		alice.Must("Login/Handler_Login", fmt.Sprintf(`{"userName":"alice%d","passWord":"x"}`, i))
	}
	p.waitJS("the Login/Handler_Login counter moves by 5", fmt.Sprintf(`%s >= %d`, counter, before+5))
	// JSON the handler cannot decode into its argument (the gate refuses
	// what is not JSON at all) is one of Login's recent errors.
	if r := alice.Request("Login/Handler_Login", 1, `{"userName":5}`); r.Error != "body must be JSON format" {
		t.Fatalf("bad request answered %+v", r)
	}
	p.waitJS("the bad request among the recent errors", `[...document.querySelectorAll('#errors tbody tr')].some(tr =>
		tr.innerText.includes('login') && tr.innerText.includes('Handler_Login') && tr.innerText.includes('bad_request'))`)
	p.waitJS("the broker is connected on every process", `[...document.querySelectorAll('section.proc')].every(s => s.querySelector('.broker .badge.ok'))`)
	p.waitJS("the rate chart drew a line", `document.querySelector('#chart-rate polyline') !== null`)

	var status string
	p.eval(`document.getElementById('status').textContent`, &status)
	if !strings.HasPrefix(status, "live") {
		t.Errorf("status = %q", status)
	}
	// Screenshot now, before the page leaves gate1's console.
	shot, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("CONSOLE_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "console.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	// gate2's console is another origin: no token stored for it, so the
	// page asks; a wrong one is refused, the right one shows the cluster.
	p.navigate("http://" + admin2 + "/console/")
	p.waitJS("the page asks for the token", `!document.getElementById('token-form').hidden && document.getElementById('status').textContent === 'token required'`)
	p.submitToken("wrong")
	p.waitJS("a wrong token is refused", `document.getElementById('status').textContent === 'token refused'`)
	p.submitToken("t0ken")
	p.waitJS("gate2's console with the token shows every process", `[...document.querySelectorAll('section.proc')].map(s => s.dataset.process).sort().join(' ') === 'chat gate1 gate2 login' &&
		document.querySelector('section.proc').dataset.process === 'gate2'`)
}

func (p *consolePage) navigate(url string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("processes"))); err != nil {
		p.t.Fatalf("open %s: %v", url, err)
	}
}

func (p *consolePage) submitToken(token string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("token")), chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS("#token-form button"))); err != nil {
		p.t.Fatalf("enter the token: %v", err)
	}
}

// addToken gives the config an Admin section with a token (the gates'
// addresses come from -admin).
func addToken(t *testing.T, confFile, token string) {
	t.Helper()
	b, err := os.ReadFile(confFile)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("{"), []byte(fmt.Sprintf(`{
  "Admin": {"Token": %q},`, token)), 1)
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type consolePage struct {
	t   *testing.T
	ctx context.Context
	log *syncbuf.Buffer
}

// openConsole starts headless Chromium (flags from ENVIRONMENT.md) on url.
func openConsole(t *testing.T, url string) *consolePage {
	t.Helper()
	ctx, out := browsertest.Start(t, 1400, 1000)
	p := &consolePage{t: t, ctx: ctx, log: &syncbuf.Buffer{}}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(p.log, "%s %s:%d %s\n", m.Type, m.URL, m.Line+1, m)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page console:\n%s\nbrowser output:\n%s", p.log.String(), out.String())
		}
	})
	nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
	defer ncancel()
	if err := chromedp.Do(nctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("processes"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return p
}

// eval evaluates expr in the page and decodes its value into out.
func (p *consolePage) eval(expr string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		p.t.Fatalf("eval %s: %v", expr, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		p.t.Fatalf("eval %s: %v (%s)", expr, err, raw)
	}
}

// waitJS polls until cond is true in the page, for up to 30 s.
func (p *consolePage) waitJS(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		p.eval(cond, &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var state string
			p.eval(`document.getElementById('status').textContent + ' | ' + document.getElementById('summary').textContent + ' | ' + document.getElementById('processes').innerText.slice(0, 3000)`, &state)
			p.t.Fatalf("timed out waiting for: %s\npage: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
