// Package csharptest runs the generated C# client SDK for real: the test
// compiles the demo's committed SDK (generated/csharp) with a C# program
// (testdata/ChatProgram.cs) using Debian's mcs, and runs it with mono
// against the chat demo's gate, in process on free loopback ports, over TCP
// and over WebSocket. The package's module, Slow, answers late on purpose,
// so a call can time out against a real server.
package csharptest
