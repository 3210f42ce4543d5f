package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// get fetches path from the admin listener, with the token when given.
func get(t *testing.T, app *core.App, method, path, token string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+app.AdminAddr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// No keep-alive: the client's idle connections would outlive the test.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestConsoleInProcess: a process without a broker serves the console of
// itself: its instances, its handlers with their counts, and a panic with
// the id its caller got. The token guards the data, not the static page.
func TestConsoleInProcess(t *testing.T) {
	leakcheck.Check(t)
	cfg := config()
	cfg.Admin = core.AdminConfig{Addr: "127.0.0.1:0", Token: "s3cret"}
	f := newFixture(t, cfg, core.Options{ProcessID: "p"})
	f.start(t)

	_, err := call(f.app, context.Background(), "Alpha", "Panic", nil)
	if !errors.Is(err, core.ErrRemotePanic) {
		t.Fatalf("err = %v", err)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(err.Error(), "internal error (id "), ")")
	if _, err := call(f.app, context.Background(), "Beta", "Echo", new(string)); err != nil {
		t.Fatal(err)
	}

	var st core.ConsoleState
	mqtttest.Poll(t, "the console shows the calls", func() bool {
		code, body, _ := get(t, f.app, "GET", "/console/api/state", "s3cret")
		if code != http.StatusOK {
			t.Fatalf("state: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("state does not decode: %v\n%s", err, body)
		}
		p := st.Processes[0].Report
		return calls(p, "Alpha", "Panic") == 1 && calls(p, "Beta", "Echo") == 1
	})
	if len(st.Processes) != 1 || st.Bus != "in-process" || st.Processes[0].Process != "p" || st.Processes[0].Key != st.Self {
		t.Fatalf("state = %+v", st)
	}
	p := st.Processes[0]
	var inst []string
	for _, i := range p.Instances {
		inst = append(inst, i.Type+":"+i.ID)
	}
	if strings.Join(inst, " ") != "Alpha:a1 Beta:b1" {
		t.Errorf("instances = %v", inst)
	}
	if len(p.Errors) != 1 || p.Errors[0].ID != id || p.Errors[0].Kind != "panic" || p.Errors[0].Module != "Alpha" || p.Errors[0].Handler != "Panic" {
		t.Errorf("errors = %+v, want the panic with id %s", p.Errors, id)
	}

	for _, c := range []struct {
		method, path, token string
		want                int
		has                 string
	}{
		{"GET", "/console/", "", http.StatusOK, "mqantgen console"},
		{"GET", "/console/console.js", "", http.StatusOK, "api/state"},
		{"GET", "/console", "", http.StatusMovedPermanently, ""},
		{"GET", "/console/api/state", "", http.StatusUnauthorized, "token required"},
		{"GET", "/console/api/state", "wrong", http.StatusUnauthorized, "token required"},
		{"GET", "/console/../metrics", "", http.StatusUnauthorized, "token required"},
		{"GET", "/metrics", "", http.StatusUnauthorized, "token required"},
		{"POST", "/console/api/state", "s3cret", http.StatusMethodNotAllowed, "read-only"},
	} {
		code, body, _ := get(t, f.app, c.method, c.path, c.token)
		if code != c.want || !strings.Contains(body, c.has) {
			t.Errorf("%s %s (token %q) = %d %.80q, want %d with %q", c.method, c.path, c.token, code, body, c.want, c.has)
		}
	}
}

func calls(r *core.Report, module, method string) uint64 {
	for _, h := range r.Handlers {
		if h.Module == module && h.Method == method {
			return h.Calls
		}
	}
	return 0
}
