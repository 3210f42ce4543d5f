package core

import (
	"bytes"
	"slices"
)

// SessionData is the plain, copyable state of one client connection. The
// gate that owns the connection holds the authoritative copy; handlers get a
// snapshot and send changes back through the gate's RPC functions.
type SessionData struct {
	SessionID  string            `json:"Sessionid"`
	ServerID   string            `json:"Serverid"` // id of the owning gate instance
	ClientID   string            `json:"ClientID,omitempty"`
	Network    string            `json:"Network,omitempty"` // "tcp" or "ws"
	RemoteAddr string            `json:"IP,omitempty"`
	UserID     string            `json:"Userid"`
	Settings   map[string]string `json:"Settings"`
}

// Clone returns a deep copy, so the receiver of a snapshot cannot change the
// owner's state by accident.
func (s *SessionData) Clone() *SessionData {
	if s == nil {
		return nil
	}
	c := *s
	if s.Settings != nil {
		c.Settings = make(map[string]string, len(s.Settings))
		for k, v := range s.Settings {
			c.Settings[k] = v
		}
	}
	return &c
}

// The gate answers every session call from another process (Bind, Push,
// Set, ...) with the session's new snapshot, encoded by AppendJSON: a
// writer of its JSON, as generated code registers for flat results, where
// the codec's reflective struct and map encoders took 3% of a gate's CPU
// at 100 logins in flight in the cluster. TestSessionDataJSONMatchesCodec
// holds it to the codec's bytes.
func init() {
	RegisterAppender((*SessionData)(nil), func(b []byte, v any) []byte {
		s := v.(*SessionData)
		if s == nil {
			return append(b, "null"...)
		}
		return s.appendJSON(b)
	})
}

// appendJSON appends s as the codec encodes it: the fields in their order,
// the omitempty ones left out when empty, Settings with its keys sorted
// (null when nil).
func (s *SessionData) appendJSON(b []byte) []byte {
	b = append(b, `{"Sessionid":`...)
	b = AppendJSONString(b, s.SessionID)
	b = append(b, `,"Serverid":`...)
	b = AppendJSONString(b, s.ServerID)
	if s.ClientID != "" {
		b = append(b, `,"ClientID":`...)
		b = AppendJSONString(b, s.ClientID)
	}
	if s.Network != "" {
		b = append(b, `,"Network":`...)
		b = AppendJSONString(b, s.Network)
	}
	if s.RemoteAddr != "" {
		b = append(b, `,"IP":`...)
		b = AppendJSONString(b, s.RemoteAddr)
	}
	b = append(b, `,"Userid":`...)
	b = AppendJSONString(b, s.UserID)
	b = append(b, `,"Settings":`...)
	if s.Settings == nil {
		b = append(b, "null"...)
		return append(b, '}')
	}
	var small [8]string
	keys := small[:0]
	for k := range s.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, k)
		b = append(b, ':')
		b = AppendJSONString(b, s.Settings[k])
	}
	return append(b, '}', '}')
}

// decodeSessionFast decodes a session snapshot as appendJSON writes it
// when every key and string in it is plain ASCII: the known field names
// spelt exactly, strings without escapes or control characters, Settings an
// object of such strings or null, whitespace anywhere JSON allows it. Any
// other input (an escape, a non-ASCII byte, a null field, another key,
// another spelling, which the codec would match without regard to case)
// returns false and is left to the codec, so what it accepts it decodes as
// the codec does (FuzzDecodeSessionFast). A module's session calls to a
// gate in another process get their reply's snapshot this way: the codec's
// reflective decoder took 4% of the Login module's CPU in the cluster.
func decodeSessionFast(data []byte) (*SessionData, bool) {
	p := plainParser{data: data}
	s := &SessionData{}
	if !p.byte('{') {
		return nil, false
	}
	if p.byte('}') {
		return s, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false
		}
		var f *string
		switch string(key) {
		case "Sessionid":
			f = &s.SessionID
		case "Serverid":
			f = &s.ServerID
		case "ClientID":
			f = &s.ClientID
		case "Network":
			f = &s.Network
		case "IP":
			f = &s.RemoteAddr
		case "Userid":
			f = &s.UserID
		case "Settings":
			if s.Settings, ok = p.settings(s.Settings); !ok {
				return nil, false
			}
		default:
			return nil, false
		}
		if f != nil {
			v, ok := p.str()
			if !ok {
				return nil, false
			}
			*f = string(v)
		}
		if p.byte('}') {
			return s, p.end()
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// PlainStrings stores in into the strings of raw when raw is a JSON array
// of exactly len(into) strings, each plain printable ASCII without escapes
// (whitespace anywhere JSON allows it), as substrings of one copy of raw.
// Anything else returns false and stores nothing: the codec decodes it. The
// positional arguments of generated RPC methods take this way when they are
// all strings (coregen.Args: a session call's ids and values), where the
// codec decoded raw messages and then each string.
func PlainStrings(raw []byte, into []*string) bool {
	p := plainParser{data: raw}
	var small [4][2]int
	spans := small[:0]
	if len(into) == 0 || !p.byte('[') {
		return false
	}
	for {
		v, ok := p.str()
		if !ok {
			return false
		}
		end := p.i - 1 // the closing quote
		spans = append(spans, [2]int{end - len(v), end})
		if p.byte(']') {
			break
		}
		if !p.byte(',') {
			return false
		}
	}
	if !p.end() || len(spans) != len(into) {
		return false
	}
	all := string(raw)
	for k, sp := range spans {
		*into[k] = all[sp[0]:sp[1]]
	}
	return true
}

// plainParser reads JSON made only of plain printable-ASCII strings
// without escapes (decodeSessionFast, PlainStrings).
type plainParser struct {
	data []byte
	i    int
}

func (p *plainParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c after optional whitespace.
func (p *plainParser) byte(c byte) bool {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *plainParser) end() bool {
	p.space()
	return p.i == len(p.data)
}

// str reads a string of printable ASCII without escapes.
func (p *plainParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.data); p.i++ {
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			return p.data[start : p.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// settings reads null or an object of such strings, added to m (a key
// given twice: as the codec does, the second object adds to the first).
func (p *plainParser) settings(m map[string]string) (map[string]string, bool) {
	p.space()
	if bytes.HasPrefix(p.data[p.i:], []byte("null")) {
		p.i += 4
		return nil, true
	}
	if !p.byte('{') {
		return nil, false
	}
	if m == nil {
		m = map[string]string{}
	}
	if p.byte('}') {
		return m, true
	}
	for {
		k, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, false
		}
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		m[string(k)] = string(v)
		if p.byte('}') {
			return m, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}
