// Package rabbitmq is the RabbitMQ (AMQP 0-9-1) transport of the RPC layer,
// for modules that run in different processes or on different hosts. It
// implements core.Transport with github.com/rabbitmq/amqp091-go.
//
// Queues: every module instance consumes its own queue "mqant.i.<id>" (for
// calls addressed to that instance, such as pushes to a session's gate) and
// its type's shared queue "mqant.t.<type>" (auto-delete, calls
// load-balanced over the instances of a type). The type queue vanishes with
// its last consumer, so a call published with the mandatory flag to a type
// nobody serves comes straight back (basic.return) and fails at once with
// core.ErrNotFound. The instance queue outlives its consumer by its
// expiry (x-expires and x-message-ttl, 60 s by default): a gate whose
// connection drops finds the pushes sent meanwhile when it reconnects,
// instead of losing them with an exclusive queue. Its consumer is
// exclusive, so a second process with the same id is refused. A call with
// a reply to an instance without consumer is failed by its caller within
// about half a second (a passive declare shows no consumer); a call to an
// instance that never existed, or whose queue expired, comes back at once.
// Pushes into a queue without consumer are logged by their sender, and
// counted lost (Stats) as its message TTL drops them or it expires with
// them; once it has had no consumer for the expiry, pushes to it fail at
// once (core.ErrNotFound). A graceful stop hands the calls it received
// but did not start back to their type queue with what is left of their
// deadline (never a redelivered one), bounded by the drain timeout.
//
// Calls travel in a small versioned binary envelope (envelope.go; the call
// id is the AMQP correlation id) carrying the function, the session, the
// JSON-encoded argument, the no-reply flag and the remaining time, never a
// wall-clock deadline. The message's AMQP
// expiration of a call with a reply matches that remaining time, so the
// broker drops stale calls; no-reply calls carry no expiration.
// Replies come back by direct reply-to (amq.rabbitmq.reply-to). No-reply
// calls go through a channel in confirm mode and wait for the broker's
// confirm, so a no-reply call that cannot be delivered still fails.
//
// Calls, no-reply calls and replies bound for one queue (or one caller)
// while two messages to it await the broker's confirm are sent together
// as one batch message (batch.go; the confirms clock the batches): no
// timer, so a lone call goes out at once, and the busier the broker the
// more each message carries. A lone call or reply to a queue with nothing
// in flight goes out on a channel without confirms, so it costs the
// broker and both processes no confirm frame (calls with a reply and
// replies need no order between messages; no-reply calls, pushes among
// them, always go through the confirm channel, in order). A batch keeps
// each call's rules:
// it is returned whole when nobody serves its queue (every call in it
// fails with core.ErrNotFound), its expiration is its longest call's, each
// call's own timeout bounds its handler, each is deduplicated and refused
// when redelivered on its own, and the delivery is acknowledged when the
// last of its calls ran. Transport.Traffic and the metrics
// mqant_rpc_broker_messages_total, mqant_rpc_carried_total,
// mqant_rpc_batched_total and mqant_rpc_unconfirmed_messages_total count
// messages, what they carried and which went without a confirm.
//
// Delivery is at most once: a call is acknowledged after its handler ran; a
// call the broker redelivers (its first consumer died mid-call) is not run
// again but answered with core.ErrTransport, so the caller learns of it
// at once. One exception keeps pushes: a call redelivered to the instance
// queue of the same live process after its connection dropped runs when it
// never reached a handler here (it was in the client's buffer or on the
// wire); the process remembers the calls it started (the running ones and
// the last 8192), and refuses those. Calls with and without a reply follow
// the same rule.
//
// When the broker goes away, every call waiting for a reply fails with
// core.ErrTransport, new calls fail at once, and the transport redials
// with backoff, declaring its queues and consumers again, without a restart.
//
// The console's process reports (core.ReportBus, reports.go) use the
// fanout exchange "mqant.console" (not durable): each subscriber reads from
// an exclusive auto-delete queue of its own, and a report expires after 5 s.
// Subscriptions resume on every new connection.
package rabbitmq
