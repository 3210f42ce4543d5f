package rabbitmq

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/mqantgen/mqantgen/core"
)

// Strings every call would otherwise allocate, from small sets: the
// function names of calls served, and the queue names of targets called.
// Each table is a map replaced whole when a string is added (reads take no
// lock). A name from a client (a gate forwards any topic's module and
// handler) can be anything, so a table takes strings of at most
// maxInternedLen bytes and stops growing at maxInterned of them: at most
// 64 KiB each, and a flood of made-up names copies the map 1,024 times
// once. Past that, strings are made per call as before.

const (
	maxInterned    = 1024
	maxInternedLen = 64
)

type internTable[K comparable] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]string]
}

// add stores v under k unless v is long or the table is full, and
// returns v.
func (t *internTable[K]) add(k K, v string) string {
	if len(v) > maxInternedLen {
		return v
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := map[K]string{}
	if old := t.m.Load(); old != nil {
		if len(*old) >= maxInterned {
			return v
		}
		m = maps.Clone(*old)
	}
	m[k] = v
	t.m.Store(&m)
	return v
}

var fnNames internTable[string]

// fnName returns b as a string, the same one for the same name.
func fnName(b []byte) string {
	if m := fnNames.m.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok { // no conversion made for a lookup
			return s
		}
	}
	s := string(b)
	return fnNames.add(s, s)
}

var queueNames internTable[core.Target]

// queueFor is the queue that serves calls to target to: its instance's
// queue, or its module type's.
func queueFor(to core.Target) string {
	if m := queueNames.m.Load(); m != nil {
		if q, ok := (*m)[to]; ok {
			return q
		}
	}
	q := typePrefix + to.Type
	if to.ID != "" {
		q = instancePrefix + to.ID
	}
	return queueNames.add(to, q)
}
