package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/mqantgen/mqantgen/internal/testkit/rabbittest"
)

// TestCounters: /counters serves the broker's count of published messages
// in Prometheus text format, and it follows what a client publishes.
func TestCounters(t *testing.T) {
	b := rabbittest.StartT(t)
	srv := httptest.NewServer(counters(b))
	defer srv.Close()
	get := func() string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/counters")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /counters: %s: %s", resp.Status, body)
		}
		return string(body)
	}
	if got := get(); !strings.Contains(got, "\nrabbitmq_messages_received_total 0\n") {
		t.Fatalf("a fresh broker's counters:\n%s\nwant rabbitmq_messages_received_total 0", got)
	}
	c, err := amqp.Dial(b.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2))
	for range 2 {
		if err := ch.Publish("", "nobody", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		select { // counted by the time the broker confirms
		case <-confirms:
		case <-time.After(10 * time.Second):
			t.Fatal("no publisher confirm within 10 s")
		}
	}
	if got := get(); !strings.Contains(got, "\nrabbitmq_messages_received_total 2\n") {
		t.Errorf("after 2 publishes:\n%s\nwant rabbitmq_messages_received_total 2", got)
	}
}
