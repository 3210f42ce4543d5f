//go:build race

package core

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are checked without it (make unit runs them again).
const raceEnabled = true
