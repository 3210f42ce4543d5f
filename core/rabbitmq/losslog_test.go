package rabbitmq

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// TestLossLogSaysWhatItHeld: losses inside a window are said when it ends
// with no loss after them, and at close; none is left unsaid.
func TestLossLogSaysWhatItHeld(t *testing.T) {
	old := lossLogEvery
	lossLogEvery = 200 * time.Millisecond
	t.Cleanup(func() { lossLogEvery = old })
	var buf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	lines := func() []string { return strings.Split(strings.TrimSpace(buf.String()), "\n") }
	var l lossLog
	l.log(log, slog.LevelError, "pushes lost", "q1", 3)
	l.log(log, slog.LevelError, "pushes lost", "q1", 2)
	l.log(log, slog.LevelError, "pushes lost", "q1", 4)
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "count=3") {
		t.Fatalf("first loss not said at once, or the next not held: %q", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(lines()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], "count=6") || !strings.Contains(got[1], "queue=q1") {
		t.Fatalf("held losses not said when the window ended: %q", got)
	}
	// Held again, then the transport closes before the window ends.
	l.log(log, slog.LevelError, "pushes lost", "q1", 5)
	l.close()
	if got := lines(); len(got) != 3 || !strings.Contains(got[2], "count=5") {
		t.Fatalf("held loss not said at close: %q", got)
	}
	l.log(log, slog.LevelError, "pushes lost", "q1", 1)
	if got := lines(); len(got) != 4 || !strings.Contains(got[3], "count=1") {
		t.Fatalf("a loss after close not said at once: %q", got)
	}
}
