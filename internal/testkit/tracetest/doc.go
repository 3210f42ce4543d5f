// Package tracetest holds the tests of request tracing across processes:
// a gate in the test process and the modules it calls in a second process
// (the test binary run again), over a private RabbitMQ broker, each with
// its own OpenTelemetry SDK and in-memory exporter. It has no code of its
// own.
package tracetest
