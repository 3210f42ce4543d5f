// Package browsertest starts the headless Chromium the browser tests drive
// (flags from ENVIRONMENT.md: no sandbox as root, no GPU, no background
// network), one per test.
package browsertest

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mqantgen/mqantgen/internal/testkit/syncbuf"
)

// ChromiumPath is Debian's Chromium, which make test installs.
const ChromiumPath = "/usr/bin/chromium"

// Start starts Chromium with a window of width x height and returns the
// context of its first tab and the browser's combined output. The browser
// lives until the test ends; a browser that does not start fails the test
// with its output.
func Start(t testing.TB, width, height int) (context.Context, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first Do gets the chromedp context itself: the browser lives as
	// long as ctx, not as long as a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v\nbrowser output:\n%s", ChromiumPath, err, out.String())
	}
	return ctx, out
}
