package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// Histogram buckets: values below histSub nanoseconds are exact; above,
// every power of two is split into histSub/2 equal buckets, so a bucket's
// width is at most 1/128 of its values (under 0.8% error). Values are capped
// at histMax.
const (
	histSubBits = 8
	histSub     = 1 << histSubBits
	histHalf    = histSub / 2
	histMaxBits = 38                                           // 2^38 ns is about 4.6 minutes
	histBuckets = histSub + (histMaxBits-histSubBits)*histHalf // 4096
	histMax     = 1<<histMaxBits - 1
)

// Histogram is a log-linear latency histogram of fixed size (about 32 KiB),
// in the spirit of HdrHistogram: recording is a few instructions and never
// allocates. It is not safe for concurrent use.
type Histogram struct {
	counts   [histBuckets]int64
	n        int64
	sum      float64
	min, max int64
}

// bucketOf returns the bucket index of v (nanoseconds, 0 <= v <= histMax).
func bucketOf(v int64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits // >= 1
	m := int(v >> shift)                         // in [histHalf, histSub)
	return histSub + (shift-1)*histHalf + m - histHalf
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	shift := (i-histSub)/histHalf + 1
	m := int64((i-histSub)%histHalf + histHalf)
	return m << shift, (m+1)<<shift - 1
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > histMax {
		v = histMax
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Count returns the number of values recorded.
func (h *Histogram) Count() int64 { return h.n }

// Max returns the largest value recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest value recorded (exact).
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the mean of the values recorded (exact).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q (0 < q <= 1): the middle of the
// bucket holding the ceil(q*n)-th smallest value, clamped to the exact
// minimum and maximum. It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(max(h.min, min(v, h.max)))
		}
	}
	return time.Duration(h.max)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }
