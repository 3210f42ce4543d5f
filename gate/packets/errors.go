package packets

import "errors"

// The sentinel errors below are comparable values; decoding errors wrap them
// with detail (fmt.Errorf("%w: ...")), so test them with errors.Is.
var (
	// ErrMalformed reports a packet that does not follow the encoding rules:
	// bad flags, bad lengths, truncated fields, invalid UTF-8, reserved values.
	// The server closes the connection without a reply [MQTT-4.8.0-1].
	ErrMalformed = errors.New("packets: malformed packet")

	// ErrProtocolViolation reports a well-encoded packet whose content the
	// spec forbids, such as a SUBSCRIBE without topic filters [MQTT-3.8.3-3].
	ErrProtocolViolation = errors.New("packets: protocol violation")

	// ErrPacketTooLarge reports a remaining length above the Reader's maximum
	// size. The body has not been read, so the stream is unusable.
	ErrPacketTooLarge = errors.New("packets: packet too large")

	// ErrUnsupportedProtocol reports a CONNECT whose protocol name or level
	// is neither "MQTT"/4 nor "MQIsdp"/3. The server answers CONNACK
	// UnacceptableProtocolVersion and closes [MQTT-3.1.2-2] (for an unknown
	// name it may also close without one [MQTT-3.1.2-1]).
	ErrUnsupportedProtocol = errors.New("packets: unsupported protocol name or level")

	// ErrIdentifierRejected reports a CONNECT with an empty client id and
	// clean session 0. The server answers CONNACK IdentifierRejected and
	// closes [MQTT-3.1.3-8].
	ErrIdentifierRejected = errors.New("packets: client identifier rejected")
)

// ConnackCode returns the CONNACK return code the server sends before closing
// the connection when decoding a CONNECT failed with err, and false when err
// calls for closing without a CONNACK.
func ConnackCode(err error) (byte, bool) {
	switch {
	case errors.Is(err, ErrUnsupportedProtocol):
		return UnacceptableProtocolVersion, true
	case errors.Is(err, ErrIdentifierRejected):
		return IdentifierRejected, true
	}
	return 0, false
}
