package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mqantgen/mqantgen/gate/packets"
)

// TestBucketBoundaries checks that every value falls in a bucket whose range
// holds it, around every power of two, and that buckets are contiguous.
func TestBucketBoundaries(t *testing.T) {
	var vals []int64
	for e := 0; e < histMaxBits; e++ {
		p := int64(1) << e
		vals = append(vals, p-1, p, p+1, p+p/2)
	}
	vals = append(vals, histMax)
	for _, v := range vals {
		if v < 0 || v > histMax {
			continue
		}
		i := bucketOf(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of [0, %d)", v, i, histBuckets)
		}
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if v >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/128 {
			t.Errorf("bucket %d = [%d, %d] is wider than 1/128 of its values", i, lo, hi)
		}
	}
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, bucket %d ends at %d", i, lo, i-1, prevHi)
		}
	}
	if _, hi := bucketRange(histBuckets - 1); hi != histMax {
		t.Errorf("last bucket ends at %d, want %d", hi, histMax)
	}
}

// TestQuantiles compares the histogram's quantiles with exact ones on
// random latencies spanning microseconds to seconds.
func TestQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-10ms", func() time.Duration { return time.Duration(rng.Int64N(int64(10 * time.Millisecond))) }},
		{"exponential mean 300us", func() time.Duration { return time.Duration(rng.ExpFloat64() * 300e3) }},
		{"log-uniform 1us-2s", func() time.Duration {
			return time.Duration(1e3 * math.Exp2(rng.Float64()*21))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 100000)
			for i := range vals {
				d := tc.gen()
				vals[i] = int64(d)
				h.Record(d)
			}
			slices.Sort(vals)
			prev := time.Duration(0)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				exact := vals[int(q*float64(len(vals)))-1]
				got := h.Quantile(q)
				if rel := float64(int64(got)-exact) / float64(exact); rel > 0.005 || rel < -0.005 {
					t.Errorf("q%v = %v, exact %v (%.2f%% off)", q, got, time.Duration(exact), rel*100)
				}
				if got < prev {
					t.Errorf("q%v = %v < previous quantile %v", q, got, prev)
				}
				prev = got
			}
			if h.Max() != time.Duration(vals[len(vals)-1]) || h.Min() != time.Duration(vals[0]) {
				t.Errorf("min/max %v/%v, want %v/%v", h.Min(), h.Max(), time.Duration(vals[0]), time.Duration(vals[len(vals)-1]))
			}
			if h.Count() != int64(len(vals)) {
				t.Errorf("count %d, want %d", h.Count(), len(vals))
			}
		})
	}
}

func TestMergeAndEdges(t *testing.T) {
	var a, b, all Histogram
	if a.Quantile(0.99) != 0 || a.Mean() != 0 {
		t.Errorf("empty histogram: q99 %v, mean %v, want 0", a.Quantile(0.99), a.Mean())
	}
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		all.Record(d)
	}
	a.Merge(&b)
	if a != all {
		t.Errorf("merged histogram differs from one fed everything")
	}
	var h Histogram
	h.Record(-time.Second)
	h.Record(time.Hour) // beyond the range: kept at the top
	if h.Min() != 0 || h.Max() != histMax {
		t.Errorf("min %v max %v, want 0 and %v", h.Min(), h.Max(), time.Duration(histMax))
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	var h Histogram
	rec := newRecorder(4)
	n := testing.AllocsPerRun(1000, func() {
		h.Record(1234567)
		rec.record(3, 1234567, true)
	})
	if n != 0 {
		t.Errorf("Record allocates %v times, want 0", n)
	}
}

// TestRequestPathAllocatesNothing guards the load tool's own cost: sending
// a request and matching its reply allocate nothing. (The reply's topic
// string is allocated by the codec's Reader, as the gate's is for requests;
// here the topics are made beforehand.)
func TestRequestPathAllocatesNothing(t *testing.T) {
	r := &run{base: time.Now(), rec: newRecorder(1)}
	r.winEnd.Store(1 << 62)
	c := &conn{r: r}
	q := newRequester(c, r.rec, "Chat/Handler_Say/", []byte(`{"roomName":"r","say":"hi"}`), 1, 0, 0)
	c.req = q
	const runs = 1000
	topics := make([]string, runs+1)
	for i := range topics {
		topics[i] = "Chat/Handler_Say/" + strconv.Itoa(i)
	}
	reply := &packets.Publish{Payload: []byte(`{"Error":"","Result":"say success"}`)}
	matched := true
	allocs := testing.AllocsPerRun(runs, func() {
		q.buf = q.buf[:0]
		q.send(r.now())
		reply.Topic = topics[q.slots[0].msgid]
		matched = matched && q.reply(reply)
	})
	if allocs != 0 {
		t.Errorf("send and reply allocate %v times per request, want 0", allocs)
	}
	var h Histogram
	r.rec.totals(&h)
	if !matched || h.Count() != runs+1 || r.rec.errors.Load() != 0 || r.late.Load() != 0 {
		t.Errorf("matched %v, %d replies recorded, %d errors, %d late; want every one of %d matched and recorded",
			matched, h.Count(), r.rec.errors.Load(), r.late.Load(), runs+1)
	}
}
