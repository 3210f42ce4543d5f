//go:build race

package gate_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts are higher and looser under -race.
const raceEnabled = true
