package packets

// Pingreq is the PINGREQ packet, a client's keep-alive.
type Pingreq struct{}

// Pingresp is the PINGRESP packet, the answer to PINGREQ.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet, a client's clean goodbye.
type Disconnect struct{}

// Type returns TypePingreq.
func (*Pingreq) Type() byte { return TypePingreq }

// Type returns TypePingresp.
func (*Pingresp) Type() byte { return TypePingresp }

// Type returns TypeDisconnect.
func (*Disconnect) Type() byte { return TypeDisconnect }

// AppendTo appends 0xC0 0x00.
func (*Pingreq) AppendTo(dst []byte) []byte { return append(dst, TypePingreq<<4, 0) }

// AppendTo appends 0xD0 0x00, the only form clients accept.
func (*Pingresp) AppendTo(dst []byte) []byte { return append(dst, TypePingresp<<4, 0) }

// AppendTo appends 0xE0 0x00.
func (*Disconnect) AppendTo(dst []byte) []byte { return append(dst, TypeDisconnect<<4, 0) }
