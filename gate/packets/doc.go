// Package packets encodes and decodes MQTT 3.1.1 control packets, and the
// MQTT 3.1 ("MQIsdp", level 3) CONNECT that older clients send, for the
// server side of the gate.
//
// It is only a codec: it knows nothing about sessions, keep-alive, topics
// beyond their syntax, or which packets are allowed in which state (for
// example a second CONNECT [MQTT-3.1.0-2], or a CONNACK sent by a client).
// The gate's connection code makes those decisions.
//
// # Reading
//
// A Reader reads one packet at a time from a stream. Everything it does is
// bounded before memory is allocated: the remaining-length varint is at most
// four bytes, the remaining length is compared with the Reader's maximum
// size (DefaultMaxSize unless changed with SetMaxSize) before the body is
// allocated, and fixed-size packets must have exactly their size. A server
// typically lowers the maximum until CONNECT has been read:
//
//	r := packets.NewReader(conn)
//	r.SetMaxSize(4 << 10)
//	p, err := r.ReadPacket() // must be a *packets.Connect
//	...
//	r.SetMaxSize(packets.DefaultMaxSize)
//
// Ownership: to keep the hot path free of allocations, the *Publish returned
// by ReadPacket is the Reader's own value, and its Payload aliases the
// Reader's body buffer. Both are valid only until the next call to
// ReadPacket; use (*Publish).Clone to keep one. Every other packet is freshly
// allocated and owns its memory. Strings never alias the buffer.
//
// Every error from ReadPacket except io.EOF at a packet boundary means the
// connection must be closed [MQTT-4.8.0-1]. Decoding errors wrap one of the
// sentinel errors (ErrMalformed, ErrProtocolViolation, ErrUnsupportedProtocol,
// ErrIdentifierRejected, ErrPacketTooLarge), so callers use errors.Is; see
// ConnackCode for the ones that are answered with a CONNACK first.
//
// # Writing
//
// Every packet type has an append encoder, AppendTo, which allocates nothing
// when dst has enough capacity; AppendPublish is the shortcut for the
// gate's outbound messages. Encoders trust their input (QoS range, packet
// ids, UTF-8): they are for the server's own packets. They panic only when a
// length cannot be represented on the wire at all, because writing such a
// packet would desynchronise the stream.
package packets
