package gate

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// maxLogField is how much of a client-supplied string (topic, client id,
// error text quoting a packet) a log line carries.
const maxLogField = 128

// clip shortens client data for a log line or an error text: a hostile
// client's 30 KB topic costs the log 128 bytes.
func clip(s string) string {
	if len(s) <= maxLogField {
		return s
	}
	cut := maxLogField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:cut], len(s))
}

// warnLimiter lets a connection log a burst of warnings and then one per
// warnInterval, counting what it suppressed: a token bucket, set up on
// first use so the zero value works.
type warnLimiter struct {
	mu         sync.Mutex
	bucket     tokenBucket
	suppressed int64
}

const (
	warnBurst    = 5
	warnInterval = 10 * time.Second
)

// allow reports whether a warning may be logged now, and how many were
// suppressed since the last one.
func (w *warnLimiter) allow(now time.Time) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.bucket.rate == 0 {
		w.bucket.init(1/warnInterval.Seconds(), warnBurst)
	}
	if !w.bucket.take(now) {
		w.suppressed++
		return 0, false
	}
	n := w.suppressed
	w.suppressed = 0
	return n, true
}

// takeSuppressed returns the count of suppressed warnings and resets it.
func (w *warnLimiter) takeSuppressed() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.suppressed
	w.suppressed = 0
	return n
}

// tokenBucket allows rate events per second, in bursts of at most burst.
// A zero rate is no limit. Not safe for concurrent use: a connection's
// request bucket is its reader's, the warnings' is under a lock.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *tokenBucket) init(rate, burst float64) {
	b.rate, b.burst, b.tokens = rate, burst, burst
}

// take spends one token; false when the bucket is empty.
func (b *tokenBucket) take(now time.Time) bool {
	if b.rate == 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// randomHex returns n random bytes as hex: ids nobody can guess.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux [crypto/rand.Read]
	return hex.EncodeToString(b)
}

// ErrInvalidTopic is returned by Send and Broadcast for a topic no MQTT
// client could receive.
var ErrInvalidTopic = errors.New("invalid push topic")

// maxPushTopic is the longest topic an MQTT string can carry.
const maxPushTopic = 65535

// checkPushTopic refuses topics that cannot be encoded or delivered: empty,
// longer than an MQTT string, not UTF-8, with a NUL or a wildcard
// [MQTT-4.7.3-1], [MQTT-4.7.3-2], [MQTT-3.3.2-2].
func checkPushTopic(topic string) error {
	switch {
	case topic == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case len(topic) > maxPushTopic:
		return fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidTopic, len(topic), maxPushTopic)
	case !utf8.ValidString(topic):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidTopic, clip(topic))
	case strings.ContainsAny(topic, "+#\x00"):
		return fmt.Errorf("%w: %q has a wildcard or NUL", ErrInvalidTopic, clip(topic))
	}
	return nil
}
