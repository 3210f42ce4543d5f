package rabbitmq

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// The outbox's choice between the plain channel and the confirm channel,
// with the channels replaced by recorders (the real broker's side is in
// batch_test.go).

type sentMsg struct {
	plain bool
	ids   []string
	tag   uint64 // confirm channel: the delivery tag to confirm
}

// recordingOutbox returns an outbox whose publishes are recorded on the
// channel; with plain, it has a plain channel too.
func recordingOutbox(plain bool) (*outbox, chan sentMsg) {
	msgs := make(chan sentMsg, 16)
	ids := func(items []outItem) []string {
		var s []string
		for _, it := range items {
			s = append(s, it.id)
		}
		return s
	}
	var tags atomic.Uint64
	var o *outbox
	o = newOutbox(trafficReply, nil, func(key string, items []outItem) {
		tag := tags.Add(1)
		o.mu.Lock()
		o.tags[tag] = sentTag{key: key, at: time.Now(), n: len(items)}
		o.mu.Unlock()
		msgs <- sentMsg{ids: ids(items), tag: tag}
	})
	if plain {
		o.plain = func(key string, items []outItem) { msgs <- sentMsg{plain: true, ids: ids(items)} }
	}
	return o, msgs
}

// sent returns the next message published, failing after a deadline.
func sent(t *testing.T, msgs chan sentMsg, plain bool, ids ...string) sentMsg {
	t.Helper()
	select {
	case m := <-msgs:
		if m.plain != plain || !slices.Equal(m.ids, ids) {
			t.Fatalf("published plain=%v %v, want plain=%v %v", m.plain, m.ids, plain, ids)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing published, want plain=%v %v", plain, ids)
		return sentMsg{}
	}
}

// forgotten waits until the outbox has forgotten key: nothing in flight,
// nothing queued, no publisher (one that published a batch returns to the
// outbox after the recorder saw its message).
func forgotten(t *testing.T, o *outbox, key string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		_, busy := o.keys[key]
		o.mu.Unlock()
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s still busy", key)
		}
		time.Sleep(time.Millisecond)
	}
}

// queued checks that nothing was published: a send that publishes does so
// before it returns, so there is nothing to wait for.
func queued(t *testing.T, msgs chan sentMsg) {
	t.Helper()
	select {
	case m := <-msgs:
		t.Fatalf("published plain=%v %v, want it queued", m.plain, m.ids)
	default:
	}
}

func TestOutboxPlainWhenQuiet(t *testing.T) {
	o, msgs := recordingOutbox(true)
	send := func(id string) { o.send("k", outItem{id: id}) }

	// No confirm measured yet, nothing in flight: plain.
	send("a")
	sent(t, msgs, true, "a")

	// A confirm takes an hour: the plain "a" counts as in flight, so "b"
	// goes with a confirm and what follows queues behind it.
	o.mu.Lock()
	o.rtt = time.Hour
	o.mu.Unlock()
	send("b")
	b := sent(t, msgs, false, "b")
	send("c")
	send("d")
	queued(t, msgs)
	o.confirmed(b.tag, true)
	cd := sent(t, msgs, false, "c", "d")

	// "cd" in flight and the plain "a" recent: "e" queues.
	send("e")
	queued(t, msgs)
	// "a" is older than a confirm's time now; "e" still goes through the
	// confirm channel, after "cd"'s confirm.
	o.mu.Lock()
	o.lastPlain = time.Now().Add(-3 * time.Hour)
	o.mu.Unlock()
	o.confirmed(cd.tag, true)
	e := sent(t, msgs, false, "e")
	o.confirmed(e.tag, true)
	forgotten(t, o, "k")

	// Quiet again for longer than a confirm takes, nothing in flight: plain.
	send("f")
	sent(t, msgs, true, "f")
	o.mu.Lock()
	rtt := o.rtt
	o.mu.Unlock()
	if rtt >= time.Hour {
		t.Errorf("the smoothed confirm time stayed %v after three quick confirms", rtt)
	}
}

// A message the broker refuses is told to o.nacked, and for a while after
// it nothing goes plain: a refused plain message is dropped unseen.
func TestOutboxNackTold(t *testing.T) {
	o, msgs := recordingOutbox(true)
	nacks := make(chan sentTag, 4)
	o.nacked = func(s sentTag) { nacks <- s }
	o.mu.Lock()
	o.rtt = time.Hour // the plain "a" counts as in flight: "b" confirms
	o.mu.Unlock()
	o.send("k", outItem{id: "a"})
	sent(t, msgs, true, "a")
	o.send("k", outItem{id: "b"})
	b := sent(t, msgs, false, "b")
	o.confirmed(b.tag, false)
	select {
	case s := <-nacks:
		if s.key != "k" || s.n != 1 {
			t.Errorf("told of a refusal of %d items to %q, want 1 to k", s.n, s.key)
		}
	default:
		t.Fatal("a nack was not told")
	}
	forgotten(t, o, "k")
	// Quiet for longer than a confirm takes, nothing in flight: plain,
	// were it not for the refusal.
	o.mu.Lock()
	o.lastPlain = time.Now().Add(-3 * time.Hour)
	o.mu.Unlock()
	o.send("k", outItem{id: "c"})
	c := sent(t, msgs, false, "c")
	o.confirmed(c.tag, true)
	forgotten(t, o, "k")
	if len(nacks) != 0 {
		t.Error("an acknowledged message was told as refused")
	}
	o.mu.Lock()
	o.refusedAt = time.Now().Add(-refusedConfirmAll)
	o.mu.Unlock()
	o.send("k", outItem{id: "d"})
	sent(t, msgs, true, "d")
}

// Calls a stopping instance handed back are outside the window: their
// confirm frees no place, and their nack is told to o.nacked.
func TestOutboxHandBackNack(t *testing.T) {
	o, msgs := recordingOutbox(false)
	o.kind = trafficCall
	nacks := make(chan sentTag, 4)
	o.nacked = func(s sentTag) { nacks <- s }
	o.send("k", outItem{id: "a"})
	a := sent(t, msgs, false, "a")
	o.mu.Lock()
	o.tags[1000] = sentTag{key: "k", handBack: true, replyTo: "r", ids: []string{"x", "y"}, n: 2}
	o.tags[1001] = sentTag{key: "k", handBack: true, replyTo: "r", ids: []string{"z"}, n: 1}
	o.mu.Unlock()
	o.confirmed(1000, false)
	o.confirmed(1001, true)
	select {
	case s := <-nacks:
		if !s.handBack || s.replyTo != "r" || !slices.Equal(s.ids, []string{"x", "y"}) {
			t.Errorf("told of %+v, want the hand-back of x and y to r", s)
		}
	default:
		t.Fatal("the nack of a hand-back was not told")
	}
	if len(nacks) != 0 {
		t.Error("an acknowledged hand-back was told as refused")
	}
	// "a" still holds the window.
	o.send("k", outItem{id: "b"})
	queued(t, msgs)
	o.confirmed(a.tag, true)
	sent(t, msgs, false, "b")
}

// While a key's message awaits its confirm, at most maxQueued calls wait
// for it; the next fails at once with core.ErrTransport and is told to
// o.full. Replies are not bounded (the prefetch bounds them).
func TestOutboxBounded(t *testing.T) {
	old := maxQueued
	maxQueued = 2
	t.Cleanup(func() { maxQueued = old })
	o, msgs := recordingOutbox(false)
	o.kind = trafficNoReply
	full := make(chan string, 4)
	o.full = func(key string) { full <- key }
	nr := func(id string) outItem { return outItem{id: id, w: &nrWaiter{id: id, ch: make(chan error, 1)}} }
	a := nr("a")
	o.send("k", a)
	sa := sent(t, msgs, false, "a")
	b, c, d := nr("b"), nr("c"), nr("d")
	o.send("k", b)
	o.send("k", c)
	o.send("k", d)
	queued(t, msgs)
	select {
	case err := <-d.w.ch:
		if !errors.Is(err, core.ErrTransport) || !strings.Contains(err.Error(), "2 calls to k wait") {
			t.Errorf("the call past the bound got %v, want core.ErrTransport saying 2 calls wait", err)
		}
	default:
		t.Fatal("the call past the bound was not failed at once")
	}
	if len(full) != 1 || <-full != "k" {
		t.Error("o.full was not told once of key k")
	}
	for _, it := range []outItem{b, c} {
		if len(it.w.ch) != 0 {
			t.Errorf("call %s within the bound was settled before it was sent", it.id)
		}
	}
	// Once the confirm comes, what waited goes; a call fits again.
	o.confirmed(sa.tag, true)
	bc := sent(t, msgs, false, "b", "c")
	e := nr("e")
	o.send("k", e)
	queued(t, msgs)
	if len(e.w.ch) != 0 {
		t.Error("a call within the bound after the confirm was failed")
	}
	// Replies are never failed for want of room.
	o.kind = trafficReply
	o.send("k", outItem{id: "r1"})
	o.send("k", outItem{id: "r2"})
	if len(full) != 0 {
		t.Error("a reply was refused for want of room")
	}
	o.confirmed(bc.tag, true)
	sent(t, msgs, false, "e", "r1", "r2")
}

func TestOutboxWithoutPlainAlwaysConfirms(t *testing.T) {
	o, msgs := recordingOutbox(false)
	o.send("k", outItem{id: "a"})
	a := sent(t, msgs, false, "a")
	// A window of one: with "a" in flight, what follows waits for its
	// confirm and goes as one batch.
	o.send("k", outItem{id: "b"})
	o.send("k", outItem{id: "c"})
	queued(t, msgs)
	o.confirmed(a.tag, true)
	bc := sent(t, msgs, false, "b", "c")
	o.send("k", outItem{id: "d"})
	queued(t, msgs)
	o.confirmed(bc.tag, true)
	d := sent(t, msgs, false, "d")
	o.confirmed(d.tag, true)
	forgotten(t, o, "k")
	o.send("k", outItem{id: "e"})
	sent(t, msgs, false, "e")
}

// A no-reply call settles once. A lost connection's failAll and the
// publish that failed with it may both try: the second neither blocks
// (its sender may be the goroutine that reads the first) nor counts the
// push again.
func TestNoReplySettledOnce(t *testing.T) {
	w := &pushWatch{qs: map[string]*pushTarget{}}
	w.start("mqant.i.x", time.Minute)
	nw := &nrWaiter{id: "c1", ch: make(chan error, 1), watch: w, queue: "mqant.i.x"}
	first := errors.New("connection lost")
	nw.settle(first)
	done := make(chan struct{})
	go func() {
		nw.settle(errors.New("publish failed"))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a second settle blocked its sender")
	}
	if err := <-nw.ch; err != first {
		t.Errorf("the sender got %v, want the first settle's %v", err, first)
	}
	select {
	case err := <-nw.ch:
		t.Errorf("a second outcome reached the sender: %v", err)
	default:
	}
	if p := w.qs["mqant.i.x"]; p.inflight != 0 {
		t.Errorf("the watch counts %d pushes in flight after one push settled, want 0", p.inflight)
	}
}
