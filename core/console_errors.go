package core

import (
	"sync"
	"time"
	"unicode/utf8"
)

// ErrorRecord is one recent handler failure as the console shows it. ID
// is the id the client saw in "internal error (id ...)" for a panic. Msg
// is the error's text clipped; the call's arguments and session are never
// kept.
type ErrorRecord struct {
	Time    int64  `json:"time"` // unix milliseconds
	Module  string `json:"module"`
	Handler string `json:"handler"`
	Kind    string `json:"kind"` // an outcome: panic, timeout, transport, not_found, bad_request
	ID      string `json:"id,omitempty"`
	Msg     string `json:"msg"`
}

// errorRingSize bounds the failures a process keeps for the console.
const errorRingSize = 32

// maxErrorMsg bounds the text kept per failure (a panic value may be long).
const maxErrorMsg = 200

// errorRing keeps a process's most recent handler failures. It is written
// only on the error path, so its lock costs successful calls nothing.
type errorRing struct {
	mu    sync.Mutex
	buf   [errorRingSize]ErrorRecord
	total int // records ever added; the next goes to buf[total%len(buf)]
}

func (r *errorRing) add(module, handler, kind, id, msg string) {
	if r == nil {
		return
	}
	e := ErrorRecord{Time: time.Now().UnixMilli(), Module: module, Handler: handler, Kind: kind, ID: id, Msg: clipText(msg, maxErrorMsg)}
	r.mu.Lock()
	r.buf[r.total%len(r.buf)] = e
	r.total++
	r.mu.Unlock()
}

// recent returns up to n records, newest first, and how many were ever
// recorded.
func (r *errorRing) recent(n int) ([]ErrorRecord, int) {
	if r == nil {
		return nil, 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(n, r.total, len(r.buf))
	out := make([]ErrorRecord, n)
	for i := range out {
		out[i] = r.buf[(r.total-1-i)%len(r.buf)]
	}
	return out, r.total
}

// clipText cuts s to at most max bytes on a rune boundary, marking the cut.
func clipText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
