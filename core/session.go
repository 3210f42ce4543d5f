package core

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
