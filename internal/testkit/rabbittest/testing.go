package rabbittest

import (
	"fmt"
	"os"
	"testing"
)

// StartT starts a broker in a test's temporary directory and stops it when
// the test ends. It fails the test when the broker cannot start, including
// when RabbitMQ is not installed.
func StartT(tb testing.TB) *Broker {
	tb.Helper()
	b, err := Start(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after TempDir's cleanup, so it runs before the removal.
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("rabbittest: broker %s log ends with:\n%s", b.Node, b.LogTail())
		}
		if err := b.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return b
}

// Main starts a broker for a test package, stores it in *b, runs the tests
// and stops it. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(rabbittest.Main(m, &broker)) }
//
// The broker's directory is removed when every test passed, and kept (and
// named on stderr) otherwise.
func Main(m *testing.M, b **Broker) int {
	dir, err := os.MkdirTemp("", "rabbittest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rabbittest:", err)
		return 1
	}
	br, err := Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		return 1
	}
	*b = br
	code := m.Run()
	if err := br.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintf(os.Stderr, "rabbittest: broker files kept in %s\n", dir)
	}
	return code
}
