package rabbittest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The operator's hand: what someone with rabbitmqctl does to a running
// broker, for tests of how clients live through it.

// Ctl runs rabbitmqctl with args against the broker and returns its
// standard output.
func (b *Broker) Ctl(args ...string) (string, error) {
	b.mu.Lock()
	running := b.server != nil
	b.mu.Unlock()
	if !running {
		return "", fmt.Errorf("rabbittest: rabbitmqctl %s: broker %s is not running", args[0], b.Node)
	}
	// Not under b.mu: a slow rabbitmqctl must not hold StopBroker up.
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "rabbitmqctl"), append([]string{"-n", b.Node}, args...)...)
	b.mu.Lock()
	cmd.Env = b.env()
	b.mu.Unlock()
	cmd.Dir = b.path("run")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("rabbittest: rabbitmqctl %s: %w\n%s%s", args[0], err, out.String(), errb.String())
	}
	return out.String(), nil
}

// DeleteQueue deletes a queue as an operator would, consumers or not.
func (b *Broker) DeleteQueue(name string) error {
	_, err := b.Ctl("delete_queue", name)
	return err
}

// SetMemoryAlarm raises (on) or clears the broker's memory alarm by moving
// its high watermark: raised, the broker blocks every publishing
// connection (connection.blocked) until it is cleared.
func (b *Broker) SetMemoryAlarm(on bool) error {
	mark := "0.4"
	if on {
		mark = "0.0000001"
	}
	_, err := b.Ctl("set_vm_memory_high_watermark", mark)
	return err
}

// Connections returns the client-given names ("connection_name") of the
// broker's open connections; unnamed ones are left out.
func (b *Broker) Connections() ([]string, error) {
	out, err := b.Ctl("-q", "list_connections", "client_properties")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// {"connection_name","NAME"} inside the property list.
		_, rest, ok := strings.Cut(line, `{"connection_name","`)
		if !ok {
			continue
		}
		if name, _, ok := strings.Cut(rest, `"}`); ok {
			names = append(names, name)
		}
	}
	return names, nil
}

// CloseConnections closes every connection whose client-given name starts
// with prefix, as `rabbitmqctl close_connection` does, and returns how many.
func (b *Broker) CloseConnections(prefix, reason string) (int, error) {
	out, err := b.Ctl("-q", "list_connections", "pid", "client_properties")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		pid, props, ok := strings.Cut(line, "\t")
		if !ok || !strings.Contains(props, `{"connection_name","`+prefix) {
			continue
		}
		if _, err := b.Ctl("close_connection", strings.TrimSpace(pid), reason); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Queues returns the broker's queues with their consumer counts.
func (b *Broker) Queues() (map[string]int, error) {
	out, err := b.Ctl("-q", "list_queues", "name", "consumers")
	if err != nil {
		return nil, err
	}
	qs := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		var name string
		var n int
		if _, err := fmt.Sscanf(line, "%s\t%d", &name, &n); err == nil {
			qs[name] = n
		}
	}
	return qs, nil
}

// MessagesReceived returns how many messages AMQP 0-9-1 clients have
// published to the broker since it started (RabbitMQ's global counter
// messages_received_total, kept without the management plugin).
func (b *Broker) MessagesReceived() (int64, error) {
	out, err := b.Ctl("-q", "eval",
		"maps:get(messages_received_total, maps:get([{protocol,amqp091}], rabbit_global_counters:overview())).")
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rabbittest: messages_received_total: %q: %v", out, err)
	}
	return n, nil
}
