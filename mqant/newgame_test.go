package mqant_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// readmeFiles returns the files of README.md's "Start a new game"
// section: each fenced block whose first line is a comment naming a file
// ("// main.go", "# client.py").
func readmeFiles(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Start a new game\n")
	if !ok {
		t.Fatal(`README.md has no "## Start a new game" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	files := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(section))
	var name string
	var body []string
	in := false
	for sc.Scan() {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in, name, body = true, "", nil
		case in && line == "```":
			in = false
			if name != "" {
				files[name] = strings.Join(body, "\n") + "\n"
			}
		case in && len(body) == 0 && name == "":
			for _, p := range []string{"// ", "# "} {
				if f, ok := strings.CutPrefix(line, p); ok && strings.Contains(f, ".") && !strings.Contains(f, " ") {
					name = f
				}
			}
			body = append(body, line)
		case in:
			body = append(body, line)
		}
	}
	for _, want := range []string{"lobby/lobby.go", "main.go", "server.conf", "client.py"} {
		if files[want] == "" {
			t.Fatalf("README's Start a new game section lacks %s (found %v)", want, keys(files))
		}
	}
	return files
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStartANewGame does what README.md's "Start a new game" says, in a
// temporary module outside this repository: the generator as a go tool,
// go generate, the main built and run, and Debian's paho-mqtt client
// calling the handler. The only difference: the framework comes from this
// checkout (a replace directive) instead of a published version.
func TestStartANewGame(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module and runs a server; skipped with -short")
	}
	files := readmeFiles(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports, err := rabbittest.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	for name, body := range files {
		body = strings.ReplaceAll(body, "127.0.0.1:3563", addr)
		body = strings.ReplaceAll(body, `"127.0.0.1", 3563`, fmt.Sprintf(`"127.0.0.1", %d`, ports[0]))
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("go", "mod", "init", "example.com/newgame")
	// go get -tool ...@latest, with this checkout as the framework.
	run("go", "mod", "edit", "-require", "github.com/mqantgen/mqantgen@v0.0.0",
		"-replace", "github.com/mqantgen/mqantgen="+root, "-tool", "github.com/mqantgen/mqantgen/cmd/mqantgen")
	run("go", "mod", "tidy")
	if out := run("gofmt", "-l", "."); out != "" {
		t.Errorf("README's Go code is not gofmt-formatted: %s", out)
	}
	run("go", "generate", "./...")
	if _, err := os.Stat(filepath.Join(dir, "lobby", "lobby.mqant.go")); err != nil {
		t.Fatalf("go generate wrote no lobby.mqant.go: %v", err)
	}
	run("go", "vet", "./...")
	run("go", "build", "-o", "newgame", ".")

	ctx, cancel := context.WithCancel(context.Background())
	srv := exec.CommandContext(ctx, "./newgame")
	srv.Dir = dir
	logs := &syncbuf.Buffer{}
	srv.Stdout, srv.Stderr = logs, logs
	srv.Cancel = func() error { return srv.Process.Signal(os.Interrupt) }
	srv.WaitDelay = 10 * time.Second
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = srv.Wait() // reports the cancelled context even on a clean exit
		if code := srv.ProcessState.ExitCode(); code != 0 {
			t.Errorf("server exit status %d after SIGINT, want 0\n%s", code, logs)
		}
	})
	mqtttest.Poll(t, "the new game's gate listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	py := exec.Command("/usr/bin/python3", "client.py")
	py.Dir = dir
	done := make(chan struct{})
	time.AfterFunc(20*time.Second, func() {
		select {
		case <-done:
		default:
			_ = py.Process.Kill()
		}
	})
	out, err := py.CombinedOutput()
	close(done)
	if err != nil {
		t.Fatalf("client.py: %v\n%s\nserver log:\n%s", err, out, logs)
	}
	want := `Lobby/Handler_Enter/1 {"Error":"","Result":"welcome ann"}`
	if strings.TrimSpace(string(out)) != want {
		t.Fatalf("client.py printed %q, want %q\nserver log:\n%s", out, want, logs)
	}
}
