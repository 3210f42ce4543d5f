// Command soak runs the chat demo (make run's in-process config, on free
// loopback ports) under thousands of chatting clients for a bounded time
// and samples the server process every few seconds: resident memory and
// open file descriptors from /proc/PID, goroutines from its -pprof
// listener. It writes a report (tables, first/last/max and the slope of
// each over the load) and an SVG plot, to show whether they stay flat.
//
//	go build -o bin/server ./demo/server
//	go run ./bench/soak -server bin/server -duration 5m -conns 2000 -out bench/soak.md -svg bench/soak.svg
//
// make soak does both. The load is bench/loadgen's chat mode: every
// client logs in, joins a room of -room-size and says at its share of
// -rate; every member receives every say of its room.
package main
