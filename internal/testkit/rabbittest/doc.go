// Package rabbittest runs private RabbitMQ brokers for tests and for local
// clusters: each one has its own loopback ports, node name, Erlang port
// mapper (epmd), directory and HOME, so brokers never meet each other, the
// system broker, or the user's Go caches.
//
// It needs Debian's rabbitmq-server package (apt-get install -y
// rabbitmq-server); a missing broker is an error, never a skip.
//
// One broker per test package, shared by its tests:
//
//	var broker *rabbittest.Broker
//
//	func TestMain(m *testing.M) { os.Exit(rabbittest.Main(m, &broker)) }
//
// Tests that stop or restart the broker take their own with [StartT].
//
// A broker boots in 6-12 s (up to ~20 s on a loaded machine) and stops in
// 1-3 s, so share one where tests allow it. If the test binary dies without
// cleaning up, the kernel stops the broker and its epmd (Pdeathsig).
package rabbittest
