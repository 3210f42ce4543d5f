package main

import "math"

// trend summarises one figure over the load phase.
type trend struct {
	First, Last, Min, Max, Mean float64
	// SlopePerMin is the least-squares slope, units per minute; Drift is
	// slope x the phase's length over the mean: the change the trend
	// accounts for, as a fraction.
	SlopePerMin, Drift float64
}

// flatDrift is the verdict's threshold: a figure is flat when its trend
// moves it less than this fraction of its mean over the load.
const flatDrift = 0.05

func (t trend) flat() bool { return math.Abs(t.Drift) < flatDrift }

func trendOf(xs []float64, mins []float64) trend {
	if len(xs) == 0 {
		return trend{}
	}
	t := trend{First: xs[0], Last: xs[len(xs)-1], Min: xs[0], Max: xs[0]}
	var sx, sy float64
	for i, y := range xs {
		t.Min, t.Max = math.Min(t.Min, y), math.Max(t.Max, y)
		sx += mins[i]
		sy += y
	}
	n := float64(len(xs))
	mx, my := sx/n, sy/n
	t.Mean = my
	var sxy, sxx float64
	for i, y := range xs {
		sxy += (mins[i] - mx) * (y - my)
		sxx += (mins[i] - mx) * (mins[i] - mx)
	}
	if sxx > 0 {
		t.SlopePerMin = sxy / sxx
	}
	if span := mins[len(mins)-1] - mins[0]; my != 0 {
		t.Drift = t.SlopePerMin * span / my
	}
	return t
}
