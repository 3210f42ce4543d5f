// Package leakcheck fails a test that leaves goroutines behind: it notes
// the goroutines running when a test starts and, at cleanup, polls until
// every goroutine started since has ended.
package leakcheck

import (
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// Check registers a cleanup that fails t when goroutines started during the
// test are still running 5 s after it ended. Call it first in the test, so
// its cleanup runs after the others (cleanups run last-in first-out).
// Goroutines whose stack contains one of ignore are not counted (helpers
// that outlive the test on purpose, such as a shared test broker's).
func Check(t testing.TB, ignore ...string) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		var leaked []string
		for {
			leaked = leaked[:0]
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok && !benign(stack) && !ignored(stack, ignore) {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		sort.Strings(leaked)
		t.Errorf("%d goroutine(s) leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
	})
}

func ignored(stack string, ignore []string) bool {
	for _, s := range ignore {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// benign goroutines belong to the runtime or the test framework.
func benign(stack string) bool {
	for _, s := range []string{
		"testing.(*T).Run", "testing.tRunner", "testing.(*M).", "runtime.goexit0",
		"os/signal.signal_recv", "os/signal.loop", "runtime/trace", "testing.runFuzzing",
		"created by runtime.gc", "runtime.ReadTrace", "net/http.(*persistConn)", "internal/poll.runtime_pollWait\n\tinternal/poll.(*pollDesc).wait\n\tinternal/poll.(*pollDesc).waitRead\n\tinternal/poll.(*FD).Read\n\tnet.(*netFD).Read\n\tnet.(*conn).Read\n\tnet/http.(*persistConn).Read",
	} {
		if strings.Contains(stack, s) && !strings.Contains(stack, "mqantgen/") {
			return true
		}
	}
	return false
}

func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		// "goroutine 12 [running]:"
		head, _, _ := strings.Cut(g, "\n")
		f := strings.Fields(head)
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		out[f[1]] = g
	}
	return out
}
