// Package loadgen is the load generator behind bench/mqantbench: many MQTT
// connections over TCP or WebSocket that load a server and time it.
//
// Modes (Config.Mode):
//
//   - rr, request/reply: each connection publishes requests on
//     Module/Handler_X/<msgid> and waits for the reply on the same topic,
//     as the gate answers; a reply {"Error":"..."} with a non-empty error
//     counts as an error.
//   - rt, broker round trip: each connection subscribes to prefix/<conn>/+
//     and publishes to prefix/<conn>/<msgid>; the message coming back is
//     the reply. Any MQTT broker (mosquitto) serves this, so servers are
//     measured on the same terms.
//   - idle: the connections are opened and held; with Config.PID the
//     target's resident memory is reported before and after.
//   - broadcast: the connections log in and join one chat room (the chat
//     demo's Login and Chat handlers); one more connection says in it at
//     Config.Rate, with its send time in the text, and every member's
//     receipt is timed (fan-out latency).
//   - chat: every connection logs in, joins a room of Config.RoomSize
//     members and says in it at its share of Config.Rate (without a rate,
//     as fast as Config.Inflight allows: the bench's Say runs); every
//     member's receipt of every say in its room is timed. The soak runs
//     use it.
//
// Requests go either at a target rate over all connections (an open loop:
// a request's latency runs from the time it was due, so a server that
// falls behind is not flattered) or as fast as Config.Inflight outstanding
// requests per connection allow (a closed loop). Results of requests sent
// during the warm-up are left out of the summary.
//
// The client is the package's own, built on the gate's codec
// (gate/packets) so that it costs little next to the server it measures:
// one reader goroutine per connection, one sender goroutine per loaded
// connection that batches every request due into one write, requests
// matched to replies through fixed slots (no maps, no per-request
// allocation beyond the codec's topic string), and latencies kept in
// fixed-size log-linear histograms (Histogram), sharded so readers rarely
// contend. Many connections are spread over several loopback source
// addresses (Config.Sources) so that they do not run out of ephemeral
// ports.
//
// The set-up replies and the summary are JSON handled with encoding/json:
// the tool talks to servers as any client would and does not depend on the
// framework's core.
package loadgen
