// Package testkit groups the test harnesses of the repository; it has no
// code of its own. Each subpackage is imported only by tests (and by the
// local-cluster scripts), never by the framework a game links:
//
//   - browsertest: a headless Chromium for the web demo and console tests
//   - chaos: fault-injection runs of a server cluster (kill, restart, alarms)
//   - csharptest: the generated C# SDK compiled with mcs and run with mono
//   - leakcheck: goroutine-leak checks at the end of a test
//   - monotest: finds and runs mcs and mono for the C# tests
//   - mqtttest: raw and Paho MQTT clients
//   - rabbittest: private RabbitMQ brokers (and cmd/rabbitbroker)
//   - rpctest: a generated probe module for transport tests
//   - syncbuf: a locked buffer for logs written by several goroutines
//   - tracetest: request tracing across processes over RabbitMQ
//
// Production code shared inside the module stays directly under internal/:
// gen (the generator), suggest (did-you-mean names for the generator and the
// gate), workpool (the goroutine pool of core and gate) and wsconn (the
// WebSocket byte stream of the gate). Benchmark code is under bench/.
package testkit
