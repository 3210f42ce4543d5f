// Package gate is the gate module: it accepts MQTT clients over TCP and
// WebSocket, owns their sessions, routes each PUBLISH on
// "Module/Handler_X[/msgid]" to that module's handler by RPC, and publishes
// the reply on the same topic. Modules reach clients through [Session]
// (Bind, Push, Send, ...) and [Broadcast], which call the gate's own RPC
// methods, or the gate directly when it runs in the caller's process (no
// RPC, no goroutine hand-off, no timer: local.go); clients can never call
// those, only Handler_ methods.
//
// A client that connects with clean session 0 has a persistent session: it
// outlives the connection for SessionExpiry, keeps its user and settings,
// and keeps the pushes sent meanwhile (QoS 1, bounded) for the client's
// return, on this gate or another (persist.go, handoff.go).
//
// The wire codec lives in the packets sub-package.
package gate

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen .
