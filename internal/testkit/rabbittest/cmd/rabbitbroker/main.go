// Command rabbitbroker runs one private RabbitMQ broker (see package
// rabbittest) until SIGINT or SIGTERM, for scripts that start a local
// cluster:
//
//	rabbitbroker -dir /tmp/cluster/rabbit -port 25672 -print-uri &
//
// With -print-uri the AMQP URI is the only line on stdout, written once the
// broker accepts connections. Messages go to stderr. With -stats ADDR it
// serves http://ADDR/counters, the broker's count of messages published to
// it in Prometheus text format (the bench reads broker messages per call):
//
//	rabbitmq_messages_received_total 1234
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

func main() {
	os.Exit(run())
}

func run() int {
	dir := flag.String("dir", "", "broker directory for config, data and logs (default: a temporary one, removed on exit)")
	port := flag.Int("port", 0, "AMQP port on 127.0.0.1 (0: a free one)")
	printURI := flag.Bool("print-uri", false, "print the AMQP URI on stdout once the broker is ready")
	user := flag.String("user", "", "also create `NAME:PASSWORD` with full permissions on vhost /, for clients on other hosts")
	stats := flag.String("stats", "", "serve the broker's message counter at http://`ADDR`/counters (empty: no)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "rabbitbroker: unexpected arguments:", flag.Args())
		flag.Usage()
		return 2
	}
	name, password, ok := strings.Cut(*user, ":")
	if *user != "" && (!ok || name == "") {
		fmt.Fprintln(os.Stderr, "rabbitbroker: -user wants NAME:PASSWORD")
		return 2
	}

	// Take the signals before the slow start, so an early SIGTERM still
	// stops the broker.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	if *dir == "" {
		d, err := os.MkdirTemp("", "rabbitbroker-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "rabbitbroker:", err)
			return 1
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	b, err := rabbittest.StartOn(*dir, *port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rabbitbroker:", err)
		return 1
	}
	if *stats != "" {
		ln, err := net.Listen("tcp", *stats)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rabbitbroker:", err)
			_ = b.Stop()
			return 1
		}
		srv := &http.Server{Handler: counters(b), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	code := serve(b, sig, name, password, *printURI)
	if err := b.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "rabbitbroker:", err)
		code = 1
	}
	return code
}

func serve(b *rabbittest.Broker, sig <-chan os.Signal, name, password string, printURI bool) int {
	if name != "" {
		if err := b.AddUser(name, password); err != nil {
			fmt.Fprintln(os.Stderr, "rabbitbroker:", err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "rabbitbroker: %s ready at %s (dir %s)\n", b.Node, b.URI, b.Dir)
	if printURI {
		fmt.Println(b.URI)
	}
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "rabbitbroker: %v: stopping %s\n", s, b.Node)
		return 0
	case <-b.Done():
		fmt.Fprintf(os.Stderr, "rabbitbroker: broker %s exited on its own; log ends with:\n%s\n", b.Node, b.LogTail())
		return 1
	}
}

// counters serves the broker's count of messages received from clients.
func counters(b *rabbittest.Broker) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, _ *http.Request) {
		n, err := b.MessagesReceived()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE rabbitmq_messages_received_total counter\nrabbitmq_messages_received_total %d\n", n)
	})
	return mux
}
