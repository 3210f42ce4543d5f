package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/demo/web"
	"github.com/mqantgen/mqantgen/internal/testkit/browsertest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

const chromiumPath = browsertest.ChromiumPath

// TestChatInBrowser drives the real page in headless Chromium: two users
// log in over MQTT on WebSocket, meet in a room and talk, and the server's
// errors show in the page.
func TestChatInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (%v): install the chromium package (apt-get install -y chromium)", chromiumPath, err)
	}
	d := demotest.Start(t, nil)
	server := "ws://" + d.WSAddr + "/mqtt"
	artifacts := artifactDir(t)

	browser := startBrowser(t)
	alice := browser.open(t, "alice", d.WebURL)
	bob := browser.open(t, "bob", d.WebURL)

	// The default address is the page's host on the demo's WebSocket port.
	if got, want := alice.value("#server"), "ws://127.0.0.1:3653/mqtt"; got != want {
		t.Errorf("default server field = %q, want %q", got, want)
	}

	// A wrong address: the connection error is shown.
	alice.login("ws://"+deadAddr(t)+"/mqtt", "alice", "pw-alice")
	alice.waitError("Cannot connect to ws://")
	alice.waitStatus("Disconnected")
	alice.screenshot(filepath.Join(artifacts, "connect-error.png"))

	alice.login(server, "alice", "pw-alice")
	alice.waitStatus("Logged in as alice")

	// Bob forgets his password: the server's error is shown, the connection stays.
	bob.login(server, "bob", "")
	bob.waitError("userName or passWord cannot be nil")
	bob.waitStatus("Connected, not logged in")
	// Joining before logging in is refused by Chat.
	bob.do(chromedp.SetValue(chromedp.ID("room"), "lobby"), chromedp.Click(chromedp.ID("join")))
	bob.waitError("Not Logined")
	bob.login(server, "bob", "pw-bob")
	bob.waitStatus("Logged in as bob")

	alice.do(chromedp.SetValue(chromedp.ID("room"), "lobby"), chromedp.Click(chromedp.ID("join")))
	alice.waitMessage("join", "alice", "alice joined")

	// Saying in a room one has not joined is refused.
	bob.do(chromedp.SetValue(chromedp.ID("say-text"), "too early"), chromedp.Click(chromedp.ID("say")))
	bob.waitError("You haven't been in the room yet")
	bob.screenshot(filepath.Join(artifacts, "chat-error.png"))

	bob.do(chromedp.Click(chromedp.ID("join")))
	bob.waitJS("error cleared", `document.getElementById('error').hidden`)
	bob.waitMessage("join", "bob", "bob joined")
	alice.waitMessage("join", "bob", "bob joined")

	// Enter sends.
	alice.do(chromedp.SendKeys(chromedp.ID("say-text"), "Hello bob, welcome to the lobby!\n"))
	bob.do(chromedp.SetValue(chromedp.ID("say-text"), "Grüße, alice \u263A <b>not bold</b>"), chromedp.Click(chromedp.ID("say")))

	bob.waitMessage("say", "alice", "Hello bob, welcome to the lobby!")
	alice.waitMessage("say", "bob", "Grüße, alice \u263A <b>not bold</b>")
	alice.waitMessage("say", "alice", "Hello bob, welcome to the lobby!")
	alice.waitJS("input cleared after saying", `document.getElementById('say-text').value === ''`)
	if n := alice.count(`#messages b`); n != 0 {
		t.Errorf("a message's HTML was rendered as markup (%d <b> elements)", n)
	}
	alice.do(chromedp.SendKeys(chromedp.ID("say-text"), "See you!\n"))
	bob.waitMessage("say", "alice", "See you!")
	bob.screenshot(filepath.Join(artifacts, "chat.png"))

	// Bob logs out, which ends his session: alice sees him leave. (Closing
	// the tab would not: the session waits for him until SessionExpiry.)
	bob.do(chromedp.Click(chromedp.ID("logout")))
	bob.waitStatus("Disconnected")
	alice.waitMessage("leave", "bob", "bob left")
	alice.screenshot(filepath.Join(artifacts, "chat-leave.png"))
	if !t.Failed() {
		t.Logf("screenshots in %s", artifacts)
	}
}

// TestHandler checks what the demo server serves, without a browser.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		path, status, contentType, body string
	}{
		{"/", "302 Found", "", ""},
		{"/mqant/index.html", "200 OK", "text/html", `<script src="mqtt.min.js"></script>`},
		{"/mqant/", "200 OK", "text/html", `<script type="module" src="app.js"></script>`},
		{"/mqant/app.js", "200 OK", "text/javascript", "from './generated/js/chat.js'"},
		{"/mqant/generated/js/chat.js", "200 OK", "text/javascript", "export class ChatClient"},
		{"/mqant/generated/js/mqant.js", "200 OK", "text/javascript", "export class MqantClient"},
		{"/mqant/generated/js/mqant-link.js", "200 OK", "text/javascript", "export function sessionIdentity"},
		{"/mqant/generated/js/chat.d.ts", "200 OK", "text/plain", "export declare class ChatClient"},
		{"/mqant/generated/ts/chat.ts", "200 OK", "text/plain", "export interface SayRequest"},
		{"/mqant/generated/manifest.json", "200 OK", "application/json", `"topic": "Chat/OnSay"`},
		{"/mqant/generated/web.go", "404 Not Found", "", ""},
		{"/mqant/style.css", "200 OK", "text/css", ".messages"},
		{"/mqant/mqtt.min.js", "200 OK", "text/javascript", "var mqtt="},
		{"/mqant/mqtt.LICENSE.txt", "200 OK", "text/plain", "The MIT License"},
		{"/mqant/VENDORED.md", "200 OK", "", "mqtt-5.16.0.tgz"},
		{"/mqant/web.go", "404 Not Found", "", ""},
	}
	for _, tt := range tests {
		resp, err := noRedirect.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != tt.status {
			t.Errorf("GET %s: %s, want %s", tt.path, resp.Status, tt.status)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %s", tt.path, ct, tt.contentType)
		}
		if !bytes.Contains(body, []byte(tt.body)) {
			t.Errorf("GET %s: body lacks %q", tt.path, tt.body)
		}
	}
	if resp, err := noRedirect.Get(srv.URL + "/"); err == nil {
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != "/mqant/index.html" {
			t.Errorf("GET /: Location %q, want /mqant/index.html", loc)
		}
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func artifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MQANT_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// syncBuffer collects output written from other goroutines.
type syncBuffer = syncbuf.Buffer

type browser struct {
	ctx    context.Context // the first tab; its first Run started the browser
	used   bool            // whether open has handed out the first tab
	output *syncBuffer
}

func startBrowser(t testing.TB) *browser {
	t.Helper()
	ctx, out := browsertest.Start(t, 1200, 800)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("browser output:\n%s", out.String())
		}
	})
	return &browser{ctx: ctx, output: out}
}

// page is one tab with the chat page.
type page struct {
	t       testing.TB
	name    string
	ctx     context.Context
	cancel  context.CancelFunc
	console *syncBuffer
}

// open returns a tab showing url: the browser's first tab, then new ones.
func (b *browser) open(t testing.TB, name, url string) *page {
	t.Helper()
	ctx, cancel := b.ctx, context.CancelFunc(func() {})
	if b.used {
		ctx, cancel = chromedp.NewContext(b.ctx)
		t.Cleanup(cancel)
		if err := chromedp.Do(ctx); err != nil {
			t.Fatalf("%s: open tab: %v", name, err)
		}
	}
	b.used = true
	p := &page{t: t, name: name, ctx: ctx, cancel: cancel, console: &syncBuffer{}}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			fmt.Fprintf(p.console, "%s %s:%d %s\n", m.Type, m.URL, m.Line+1, m)
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s: page console:\n%s", name, p.console.String())
		}
	})
	p.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("login")))
	p.waitJS("app.js ran", `document.getElementById('server').value !== ''`)
	return p
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.t.Fatalf("%s: %v\n%s", p.name, err, p.state())
	}
}

// eval evaluates expr in the page and decodes its JSON value into out.
func (p *page) eval(expr string, out any) error {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func (p *page) value(sel string) string {
	p.t.Helper()
	var v string
	if err := p.eval(fmt.Sprintf(`document.querySelector(%q).value`, sel), &v); err != nil {
		p.t.Fatalf("%s: value of %s: %v", p.name, sel, err)
	}
	return v
}

func (p *page) count(sel string) int {
	p.t.Helper()
	var n int
	if err := p.eval(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &n); err != nil {
		p.t.Fatalf("%s: count %s: %v", p.name, sel, err)
	}
	return n
}

// state describes what the page shows, for failure messages.
func (p *page) state() string {
	var s struct {
		Status, Error string
		Messages      []string
	}
	if err := p.eval(`({
		status: document.getElementById('status').textContent,
		error: document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent,
		messages: Array.from(document.querySelectorAll('#messages li')).map(li => li.dataset.kind + ' ' + li.textContent),
	})`, &s); err != nil {
		return fmt.Sprintf("(page state unreadable: %v)", err)
	}
	return fmt.Sprintf("%s page: status %q, error %q, messages:\n  %s", p.name, s.Status, s.Error, strings.Join(s.Messages, "\n  "))
}

// waitJS polls a JavaScript condition until it is true or 15 s pass.
func (p *page) waitJS(what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		err := p.eval(`!!(`+cond+`)`, &ok)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: waited 15 s for %s (last error %v)\n%s", p.name, what, err, p.state())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (p *page) login(server, user, password string) {
	p.t.Helper()
	setPassword := chromedp.SetValue(chromedp.ID("password"), password)
	if password == "" {
		// SetValue(sel, "") fails in chromedp v0.23.0 (json v2's omitempty
		// drops the "" argument), and Clear only resets the attribute.
		setPassword = chromedp.Evaluate[chromedp.Void](`document.getElementById('password').value = ''`)
	}
	p.do(
		chromedp.SetValue(chromedp.ID("server"), server),
		chromedp.SetValue(chromedp.ID("user"), user),
		setPassword,
		chromedp.Click(chromedp.ID("login")),
	)
}

// waitStatus waits until the status badge reads text.
func (p *page) waitStatus(text string) {
	p.t.Helper()
	p.waitJS("status "+text, fmt.Sprintf(`document.getElementById('status').textContent === %q`, text))
}

// waitError waits until the page's error banner shows text.
func (p *page) waitError(text string) {
	p.t.Helper()
	p.waitJS("error "+text, fmt.Sprintf(`!document.getElementById('error').hidden &&
		document.getElementById('error-text').textContent.includes(%q)`, text))
}

// waitMessage waits until #messages has a line of kind (say, join, leave)
// by user whose text is text.
func (p *page) waitMessage(kind, user, text string) {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("message %s %s %q", kind, user, text), fmt.Sprintf(
		`Array.from(document.querySelectorAll('#messages li')).some(li =>
			li.dataset.kind === %q && li.dataset.user === %q && li.querySelector('.text').textContent === %q)`,
		kind, user, text))
}

func (p *page) screenshot(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		p.t.Fatalf("%s: screenshot is not a PNG", p.name)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("%s: screenshot %s", p.name, path)
}

// close closes the tab, which closes its MQTT connection.
func (p *page) close() {
	p.cancel()
}
