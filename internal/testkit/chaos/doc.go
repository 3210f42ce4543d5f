// Package chaos drives fault-injection tests of a cluster of server
// processes: restartable processes whose logs outlive them ([Proc]), MQTT
// clients that keep calling handlers through a gate and reconnect with
// backoff when their connection drops ([Client]), a record of every call
// and connection ([Recorder]), and the figures of each phase of a run
// ([Phase], [Figures]) as a table for a test log and for bench/REPORT.md.
//
// Everything a run measures is kept as raw events (a call's send time,
// reply time and text; a connection's up and down times; each broadcast a
// chat member received) and turned into figures only at the end, so a new
// fault is one more phase with its own fault and ready times, not new
// bookkeeping.
//
// The clients are the package's own, on the gate's codec (gate/packets):
// one reader goroutine per connection, one call in flight per client, each
// call bounded by a client-side timeout, every call carrying a unique
// "chaosId" so that a server built to log its executions (demo/server's
// chaoshook build tag) shows calls that ran twice.
package chaos
