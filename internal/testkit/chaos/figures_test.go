package chaos

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAnalyse(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	rec := NewRecorder()
	call := func(id, client, gate, route string, sent, replied int, err string) *Call {
		c := &Call{ID: id, Client: client, Gate: gate, Route: route, Sent: at(sent), Err: err}
		if replied >= 0 {
			c.Replied, c.Ended, c.Replies = at(replied), at(replied), 1
		}
		rec.addCall(c)
		return c
	}
	// Baseline: [0, 1000). The fault phase: [1000, 20000), fault at 1000,
	// ready at 3000.
	call("u1.1", "u1", "gate1", LoginRoute, 100, 110, "")
	call("u1.2", "u1", "gate1", LoginRoute, 990, 11000, "deadline exceeded") // in flight at the fault: slow error
	call("u2.1", "u2", "gate2", LoginRoute, 1100, 1105, "Service(type:Login) not found")
	call("u2.2", "u2", "gate2", LoginRoute, 3000, 3400, "")
	call("u1.3", "u1", "gate1", LoginRoute, 11000, 11010, "")
	gaveUp := call("u3.1", "u3", "gate1", LoginRoute, 5000, -1, "")
	gaveUp.GaveUp, gaveUp.Ended = true, at(17000)
	lost := call("u4.1", "u4", "gate2", LoginRoute, 5000, -1, "")
	lost.ConnLost, lost.Ended = true, at(5500)
	dup := call("u4.2", "u4", "gate2", LoginRoute, 6000, 6010, "")
	dup.Replies = 2
	say := call("m1.1", "m1", "gate1", SayRoute, 4000, 4010, "")
	rec.addConn(&Conn{Client: "u4", Gate: "gate2", Up: at(0), Down: at(5500), Err: "EOF"})
	rec.addConn(&Conn{Client: "u1", Gate: "gate1", Up: at(0), Down: at(19000), Closed: true})
	rec.addJoin(&Join{Member: "m1", From: at(50)})
	rec.addJoin(&Join{Member: "m2", From: at(50)})
	rec.addJoin(&Join{Member: "m3", From: at(50), To: at(4500)}) // left before the grace: not expected
	rec.received("m1", say.ID, at(4005))
	rec.received("m1", say.ID, at(4006))

	run := &Run{Rec: rec, Execs: map[string]int{"u1.1": 1, "u1.2": 2, "u2.2": 1, "u1.3": 1, "u4.2": 1}}
	base := run.Analyse(Phase{Name: "base", Start: at(0), End: at(1000)})
	if base.Calls != 1 || base.OK != 1 || base.FirstOK != 0 || base.AllOK != 0 {
		t.Errorf("baseline: %+v", base)
	}
	f := run.Analyse(Phase{Name: "fault", Start: at(1000), End: at(20000), Fault: at(1000), Ready: at(3000), RestartedGate: "gate2"})
	want := Figures{Phase: "fault", Calls: 8, OK: 4, Errors: 1, SlowErrors: 1, NoReply: 1, LostWithConn: 1,
		ConnsLostRestarted: 1, Outage: 2 * time.Second, FirstOK: 400 * time.Millisecond, AllOK: -1,
		Execs: true, RanTwice: 1, RanNotOK: 1, OKUnseen: 1, DupReplies: 1, Hung: 1,
		PushesExpected: 1, PushesLost: 1, PushesDup: 1, SaysWithLoss: 1, MaxErrorWait: 10010 * time.Millisecond}
	if len(f.ErrorTexts) != 2 || f.ErrorTexts["deadline exceeded"] != 1 {
		t.Errorf("error texts: %v", f.ErrorTexts)
	}
	f.ErrorTexts = nil
	if !reflect.DeepEqual(f, want) {
		t.Errorf("fault phase:\n got %+v\nwant %+v", f, want)
	}
	if tab := Table([]Figures{base, f}); !strings.Contains(tab, "| fault | 8 | 4 | 1 | 2 (1 / 1) | 10.0 s | 1 | 0 / 1 | 2.0 s | 400 ms | never | 1 | 1 | 1 | 1 | 1 / 1 | 1 |") {
		t.Errorf("table:\n%s", tab)
	}
}

func TestCountExecutions(t *testing.T) {
	dir := t.TempDir()
	log1 := filepath.Join(dir, "a.log")
	log2 := filepath.Join(dir, "b.log")
	os.WriteFile(log1, []byte(`time=2026-01-01T00:00:00.000Z level=INFO msg="`+ExecLine+`" fn=Handler_Login chaosId=u1.1
time=2026-01-01T00:00:00.000Z level=INFO msg="something else" chaosId=u1.1
`), 0o644)
	os.WriteFile(log2, []byte(`time=2026-01-01T00:00:01.000Z level=INFO msg="`+ExecLine+`" fn=Handler_Login chaosId=u1.1
time=2026-01-01T00:00:01.000Z level=INFO msg="`+ExecLine+`" fn=Handler_Say chaosId=m1.7
`), 0o644)
	n, err := CountExecutions(log1, log2)
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 2 || n["u1.1"] != 2 || n["m1.7"] != 1 {
		t.Errorf("got %v", n)
	}
	if at, ok := LineTime(`time=2026-01-01T00:00:01.250Z level=INFO msg=x`); !ok || at.Nanosecond() != 250e6 {
		t.Errorf("LineTime: %v %v", at, ok)
	}
}
