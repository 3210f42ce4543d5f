// Package core is the core of an mqantgen server: configuration, the
// application lifecycle, modules, and RPC between modules.
//
// A server is a set of modules. Each module instance owns an RPC [Server]
// on which generated code registers its handlers ([Server.Register] with a
// [ModuleDesc]). Callers reach a module through an [Invoker], normally the
// [App], which picks a [Transport]: the in-process one when the callee lives
// in this process, a broker-backed one otherwise. Nothing above the
// Transport interface knows which one carries a call.
//
// core never imports the gate: session data travels as the plain
// [SessionData] struct, which the gate wraps with behaviour.
package core
