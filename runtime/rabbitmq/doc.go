// Package rabbitmq is the RabbitMQ (AMQP 0-9-1) transport of the RPC layer,
// for modules that run in different processes or on different hosts. It
// implements runtime.Transport with github.com/rabbitmq/amqp091-go.
//
// Queues: every module instance consumes its own queue "mqant.i.<id>"
// (exclusive, for calls addressed to that instance, such as a session's
// gate) and its type's shared queue "mqant.t.<type>" (auto-delete, calls
// load-balanced over the instances of a type). Both vanish with their
// consumers, so a call published with the mandatory flag to a module that
// nobody serves comes straight back (basic.return) and fails at once with
// runtime.ErrNotFound instead of waiting for its timeout.
//
// Calls travel in a small versioned binary envelope (envelope.go; the call
// id is the AMQP correlation id) carrying the function, the session, the
// JSON-encoded argument, the no-reply flag and the remaining time, never a
// wall-clock deadline. The message's AMQP
// expiration matches that remaining time, so the broker drops stale calls.
// Replies come back by direct reply-to (amq.rabbitmq.reply-to). No-reply
// calls go through a channel in confirm mode and wait for the broker's
// confirm, so a no-reply call that cannot be delivered still fails.
//
// Delivery is at most once: a call is acknowledged after its handler ran; a
// call the broker redelivers (its first consumer died mid-call) is not run
// again but answered with runtime.ErrTransport, so the caller learns of it
// at once.
//
// When the broker goes away, every call waiting for a reply fails with
// runtime.ErrTransport, new calls fail at once, and the transport redials
// with backoff, declaring its queues and consumers again, without a restart.
package rabbitmq
