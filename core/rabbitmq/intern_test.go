package rabbitmq

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/mqantgen/mqantgen/core"
)

// TestInternTables: a function name or queue name read twice is the same
// string (one allocation for all calls), the tables never hold more than
// maxInterned strings nor one longer than maxInternedLen, and names past
// either bound are still right.
func TestInternTables(t *testing.T) {
	a, b := fnName([]byte("Handler_Login")), fnName([]byte("Handler_Login"))
	if a != "Handler_Login" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("fnName: %q and %q are not one string", a, b)
	}
	q1, q2 := queueFor(core.Target{Type: "Login"}), queueFor(core.Target{Type: "Login"})
	if q1 != typePrefix+"Login" || unsafe.StringData(q1) != unsafe.StringData(q2) {
		t.Errorf("queueFor: %q and %q are not one string", q1, q2)
	}
	if q := queueFor(core.Target{Type: "Login", ID: "login1"}); q != instancePrefix+"login1" {
		t.Errorf("instance queue %q", q)
	}

	// A flood of made-up names, as a client can send through a gate.
	long := strings.Repeat("x", maxInternedLen+1)
	if got := fnName([]byte(long)); got != long {
		t.Errorf("long name read as %q", got)
	}
	for i := range 3 * maxInterned {
		name := "Handler_" + strconv.Itoa(i)
		if got := fnName([]byte(name)); got != name {
			t.Fatalf("name %q read as %q", name, got)
		}
		target := core.Target{Type: "T" + strconv.Itoa(i)}
		if got := queueFor(target); got != typePrefix+target.Type {
			t.Fatalf("queue of %v: %q", target, got)
		}
	}
	fns := *fnNames.m.Load()
	if len(fns) > maxInterned {
		t.Errorf("function names: %d interned, bound %d", len(fns), maxInterned)
	}
	for k := range fns {
		if len(k) > maxInternedLen {
			t.Errorf("function names: %d bytes interned", len(k))
		}
	}
	if n := len(*queueNames.m.Load()); n > maxInterned {
		t.Errorf("queue names: %d interned, bound %d", n, maxInterned)
	}
}
