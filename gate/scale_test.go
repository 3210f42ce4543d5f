package gate_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/gate/packets"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// roomClient is one raw connection of the scale test. A goroutine reads its
// socket all the time, so the gate never sees a slow client: replies go to
// a channel, pushes are counted.
type roomClient struct {
	c       *mqtttest.Client
	replies chan *packets.Publish
	onJoin  atomic.Int64
	mu      sync.Mutex
	says    map[string]int // OnSay payload -> times received
	other   []string       // anything unexpected
	readErr error          // why reading stopped, when it stopped early
	done    chan struct{}
}

func (rc *roomClient) readLoop(stopping *atomic.Bool) {
	defer close(rc.done)
	for {
		p, err := rc.c.Read(time.Minute)
		if err != nil {
			if !stopping.Load() {
				rc.mu.Lock()
				rc.readErr = err
				rc.mu.Unlock()
			}
			return
		}
		pub, ok := p.(*packets.Publish)
		if !ok {
			rc.mu.Lock()
			rc.other = append(rc.other, fmt.Sprintf("%#v", p))
			rc.mu.Unlock()
			continue
		}
		switch pub.Topic {
		case "Chat/OnJoin":
			rc.onJoin.Add(1)
		case "Chat/OnSay":
			rc.mu.Lock()
			rc.says[string(pub.Payload)]++
			rc.mu.Unlock()
		default:
			select {
			case rc.replies <- pub:
			default:
				rc.mu.Lock()
				rc.other = append(rc.other, "unclaimed "+pub.Topic+" "+string(pub.Payload))
				rc.mu.Unlock()
			}
		}
	}
}

// request publishes on topic (which carries a msgid) and waits for the
// reply. It runs on any goroutine, so it returns errors instead of failing.
func (rc *roomClient) request(topic, payload string) (string, error) {
	_ = rc.c.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.c.Conn.Write((&packets.Publish{Topic: topic, Payload: []byte(payload)}).AppendTo(nil)); err != nil {
		return "", err
	}
	select {
	case r := <-rc.replies:
		if r.Topic != topic {
			return "", fmt.Errorf("reply on %s, want %s", r.Topic, topic)
		}
		return string(r.Payload), nil
	case <-rc.done:
		return "", fmt.Errorf("connection closed waiting for %s: %v", topic, rc.readErr)
	case <-time.After(30 * time.Second):
		return "", errors.New("no reply on " + topic + " in 30s")
	}
}

// each runs f for every client concurrently and fails the test with the
// errors f returned. i is the client's index plus offset.
func each(t *testing.T, clients []*roomClient, offset int, f func(i int, rc *roomClient) error) {
	t.Helper()
	errs := make(chan error, len(clients))
	var wg sync.WaitGroup
	for i, rc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(offset+i, rc); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// pollFor is poll with a deadline of the caller's choosing.
func pollFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestThousandInOneRoom: 1,000 clients log in and join one room (the joins
// alone push about 500k OnJoin messages), then 5 of them say 2 messages
// each: every member receives each of the 10 OnSay exactly once, and each
// say costs one Broadcast call into the gate, not one per member.
//
// Every client drains its socket continuously, so MaxQueue keeps its
// default and no client is closed as slow.
func TestThousandInOneRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections and 500k deliveries; skipped with -short")
	}
	const (
		members = 1000
		sayers  = 5
		sayEach = 2
		room    = "big"

		joinBatch = 100
	)
	leakcheck.Check(t)
	start := time.Now()
	var stopping atomic.Bool
	clients := make([]*roomClient, members)
	// Registered before the demo starts, so it runs after the demo stopped.
	t.Cleanup(func() {
		stopping.Store(true)
		for _, rc := range clients {
			if rc != nil {
				rc.c.Conn.Close()
				<-rc.done
			}
		}
	})
	d := demotest.Start(t, nil)
	for i := range clients {
		c := mqtttest.Connect(t, d.TCPAddr, fmt.Sprintf("big-%04d", i), 0)
		rc := &roomClient{c: c, replies: make(chan *packets.Publish, 4), says: map[string]int{}, done: make(chan struct{})}
		clients[i] = rc
		go rc.readLoop(&stopping)
	}
	// Stop the demo before the clients close (cleanups run last-in
	// first-out): 1,000 members leaving one by one while Chat still runs
	// would push another ~500k OnLeave. The demo's own Stop is then a no-op.
	t.Cleanup(func() {
		stopping.Store(true)
		d.App.Stop("test finished")
	})
	t.Logf("%d connected in %v", members, time.Since(start))

	// Everyone logs in at once.
	phase := time.Now()
	user := func(i int) string { return fmt.Sprintf("user%04d", i) }
	each(t, clients, 0, func(i int, rc *roomClient) error {
		if got, err := rc.request("Login/Handler_Login/1", `{"userName":"`+user(i)+`","passWord":"x"}`); err != nil || got != `{"Error":"","Result":"login success `+user(i)+`"}` {
			return fmt.Errorf("%s login: %s %v", user(i), got, err)
		}
		return nil
	})
	t.Logf("%d logins in %v", members, time.Since(phase))

	// Then they join, joinBatch at a time. Join k pushes OnJoin to the k
	// members in the room by then; each batch waits for its pushes, so the
	// fan-out never piles up behind the joins (on a loaded machine a join
	// could otherwise wait past the RPC timeout).
	phase = time.Now()
	totalJoins := func() int64 {
		var n int64
		for _, rc := range clients {
			n += rc.onJoin.Load()
		}
		return n
	}
	for from := 0; from < members; from += joinBatch {
		batch := clients[from:min(from+joinBatch, members)]
		each(t, batch, from, func(i int, rc *roomClient) error {
			if got, err := rc.request("Chat/Handler_JoinChat/2", `{"roomName":"`+room+`"}`); err != nil || got != `{"Error":"","Result":"join success"}` {
				return fmt.Errorf("%s join: %s %v", user(i), got, err)
			}
			return nil
		})
		in := int64(from + len(batch))
		pollFor(t, 30*time.Second, fmt.Sprintf("OnJoin deliveries for %d members", in), func() bool { return totalJoins() >= in*(in+1)/2 })
	}
	const wantJoins = members * (members + 1) / 2
	t.Logf("%d joins and %d OnJoin deliveries in %v", members, wantJoins, time.Since(phase))
	before := d.Gate.Stats()
	if before.SlowClosed != 0 || before.Connections != members {
		t.Fatalf("after the joins: %d connections, %d closed as slow; want %d and 0", before.Connections, before.SlowClosed, members)
	}

	// Five members say two messages each, concurrently.
	phase = time.Now()
	want := map[string]bool{}
	for s := 0; s < sayers; s++ {
		for k := 0; k < sayEach; k++ {
			want[fmt.Sprintf(`{"roomName":"%s","say":"message %d from %s","userName":"%s"}`, room, k, user(s), user(s))] = true
		}
	}
	each(t, clients[:sayers], 0, func(i int, rc *roomClient) error {
		for k := 0; k < sayEach; k++ {
			topic := fmt.Sprintf("Chat/Handler_Say/%d", 3+k)
			body := fmt.Sprintf(`{"roomName":"%s","say":"message %d from %s"}`, room, k, user(i))
			if got, err := rc.request(topic, body); err != nil || got != `{"Error":"","Result":"say success"}` {
				return fmt.Errorf("%s say: %s %v", user(i), got, err)
			}
		}
		return nil
	})
	wantSays := sayers * sayEach
	received := func(rc *roomClient) int {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		n := 0
		for _, c := range rc.says {
			n += c
		}
		return n
	}
	pollFor(t, 30*time.Second, fmt.Sprintf("%d OnSay at each of %d members", wantSays, members), func() bool {
		for _, rc := range clients {
			if received(rc) < wantSays {
				return false
			}
		}
		return true
	})
	t.Logf("%d says delivered %d times in %v", wantSays, wantSays*members, time.Since(phase))

	after := d.Gate.Stats()
	if n := after.BroadcastCalls - before.BroadcastCalls; n != int64(wantSays) {
		t.Errorf("%d says cost %d Broadcast calls into the gate, want %d (one per say, not one per member)", wantSays, n, wantSays)
	}
	// Each say: one OnSay per member and one reply to the sayer; nothing else.
	if n, w := after.Sends-before.Sends, int64(wantSays*members+wantSays); n != w {
		t.Errorf("%d messages queued to clients during the says, want %d", n, w)
	}
	if after.SlowClosed != 0 || after.Connections != members {
		t.Errorf("after the says: %d connections, %d closed as slow; want %d and 0", after.Connections, after.SlowClosed, members)
	}
	if n := totalJoins(); n != wantJoins {
		t.Errorf("%d OnJoin deliveries, want %d", n, wantJoins)
	}
	bad := 0
	for i, rc := range clients {
		rc.mu.Lock()
		ok := len(rc.says) == len(want) && len(rc.other) == 0 && rc.readErr == nil
		for p, n := range rc.says {
			ok = ok && want[p] && n == 1
		}
		if !ok && bad < 5 {
			t.Errorf("member %d: says %v, other %v, read error %v; want each of %d says once", i, rc.says, rc.other, rc.readErr, len(want))
		}
		if !ok {
			bad++
		}
		rc.mu.Unlock()
	}
	if bad > 0 {
		t.Errorf("%d of %d members did not get every say exactly once", bad, members)
	}
	t.Logf("total %v", time.Since(start))
}
