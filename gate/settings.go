package gate

import (
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/mqantgen/mqantgen/internal/suggest"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/mqantgen/mqantgen/core"
)

// Limits and defaults of the gate; each can be set in the module's config
// Settings (README, "Gate settings").
const (
	DefaultMaxMsgLen      = 64 << 10 // bytes in one MQTT packet
	DefaultConnectMsgLen  = 16 << 10 // bytes in a packet before CONNECT
	DefaultMaxConnections = 100000   // sockets open at once, counted from accept
	DefaultMaxQueue       = 1024     // outgoing messages waiting per connection
	DefaultMaxInflight    = 64       // handler calls per connection
	DefaultMaxTopicLen    = 512      // bytes in a request topic
	DefaultConnectTimeout = 10 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute // silence allowed with keep-alive 0
	DefaultMaxKeepAlive   = time.Hour       // longest keep-alive honoured
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxQueueBytes  = 2 << 20 // outgoing bytes waiting per connection

	// Persistent sessions (clean session 0).
	DefaultSessionExpiry     = 2 * time.Minute // how long an away session is kept
	MaxSessionExpiry         = 24 * time.Hour  // the longest SessionExpiry accepted
	DefaultSessionQueueMax   = 1000            // pushes kept per session
	DefaultMaxAwaySessions   = 10000           // away sessions kept; over it the longest away ends
	MaxSessionQueueMax       = 65000           // below 65535: packet ids of kept pushes never collide
	DefaultSessionQueueBytes = 1 << 20         // bytes of pushes kept per session
	DefaultSessionInflight   = 32              // QoS 1 pushes written and not yet acknowledged

	settingCloseListeners = "SessionCloseListeners"
	sessionClosedMethod   = "OnSessionClosed"
)

// gateConfig is the gate's parsed settings.
type gateConfig struct {
	tcpAddr, wsAddr  string
	tlsConfig        *tls.Config
	maxMsgLen        int
	maxConnections   int
	maxConnsPerIP    int // 0: no limit
	maxQueue         int
	maxQueueBytes    int
	maxInflight      int
	maxTopicLen      int
	rate, burst      int // requests per second per connection; 0: no limit
	singleSession    bool
	closeListeners   []string
	connectTimeout   time.Duration
	idleTimeout      time.Duration
	maxKeepAlive     time.Duration
	wsOrigins        []string // nil: any origin
	notifyMaxPending int
	sessExpiry       time.Duration
	sessQueueAge     time.Duration
	sessQueueMax     int
	sessQueueBytes   int
	maxAway          int
	sessInflight     int
}

// idleLimit is how long a connection with keep-alive ka may stay silent:
// 1.5 x ka [MQTT-3.1.2-24], ka capped at MaxKeepAlive, and IdleTimeout for
// a client that asked for none (keep-alive 0), so no socket stays open
// forever on the client's word.
func (c *gateConfig) idleLimit(ka time.Duration) time.Duration {
	if ka == 0 {
		return c.idleTimeout
	}
	return min(ka, c.maxKeepAlive) * 3 / 2
}

// settingsReader reads one module instance's settings, collecting every
// error with its JSON path.
type settingsReader struct {
	path string // "$.Module.Gate[0].Settings"
	m    map[string]any
	seen map[string]bool
	errs []error
}

func newSettingsReader(s *core.ModuleSettings) *settingsReader {
	path := "Settings"
	if s.Path != "" {
		path = s.Path + ".Settings"
	}
	return &settingsReader{path: path, m: s.Settings, seen: map[string]bool{}}
}

func (r *settingsReader) errorf(key, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s.%s: %s", r.path, key, fmt.Sprintf(format, args...)))
}

func (r *settingsReader) get(key string) (any, bool) {
	r.seen[key] = true
	x, ok := r.m[key]
	return x, ok && x != nil
}

func (r *settingsReader) str(key, def string) string {
	x, ok := r.get(key)
	if !ok {
		return def
	}
	s, isStr := x.(string)
	if !isStr {
		r.errorf(key, "want a string, got %v", x)
		return def
	}
	return s
}

func (r *settingsReader) boolean(key string, def bool) bool {
	x, ok := r.get(key)
	if !ok {
		return def
	}
	b, isBool := x.(bool)
	if !isBool {
		r.errorf(key, "want true or false, got %v", x)
		return def
	}
	return b
}

// count reads a whole number >= lo.
func (r *settingsReader) count(key string, def, lo int) int {
	x, ok := r.get(key)
	if !ok {
		return def
	}
	f, isNum := x.(float64)
	if n, isInt := x.(int); isInt {
		f, isNum = float64(n), true
	}
	if !isNum || f != math.Trunc(f) || f < float64(lo) || f > math.MaxInt32 {
		r.errorf(key, "want a whole number >= %d, got %v", lo, x)
		return def
	}
	return int(f)
}

// duration reads a positive duration such as "30s".
func (r *settingsReader) duration(key string, def time.Duration) time.Duration {
	x, ok := r.get(key)
	if !ok {
		return def
	}
	s, _ := x.(string)
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.errorf(key, "want a positive duration such as \"30s\", got %v", x)
		return def
	}
	return d
}

func (r *settingsReader) strings(key string) []string {
	x, ok := r.get(key)
	if !ok {
		return nil
	}
	list, isList := x.([]any)
	if !isList {
		r.errorf(key, "want an array of strings, got %v", x)
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, isStr := e.(string)
		if !isStr || s == "" {
			r.errorf(fmt.Sprintf("%s[%d]", key, i), "want a non-empty string, got %v", e)
			continue
		}
		out = append(out, s)
	}
	return out
}

// unknown reports settings nobody read, with the closest known name: a
// misspelt limit must not silently leave the default in force.
func (r *settingsReader) unknown() {
	known := make([]string, 0, len(r.seen))
	for k := range r.seen {
		known = append(known, k)
	}
	sort.Strings(known)
	keys := make([]string, 0, len(r.m))
	for k := range r.m {
		if !r.seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if best := suggest.Closest(k, known); best != "" {
			r.errorf(k, "unknown gate setting; did you mean %s?", best)
		} else {
			r.errorf(k, "unknown gate setting; known: %s", strings.Join(known, ", "))
		}
	}
}

// parseSettings reads and checks the gate's settings; every problem is
// reported, each with its JSON path.
func parseSettings(s *core.ModuleSettings) (gateConfig, error) {
	r := newSettingsReader(s)
	c := gateConfig{
		tcpAddr:          r.str("TCPAddr", ""),
		wsAddr:           r.str("WSAddr", ""),
		maxMsgLen:        r.count("MaxMsgLen", DefaultMaxMsgLen, 64),
		maxConnections:   r.count("MaxConnections", DefaultMaxConnections, 1),
		maxConnsPerIP:    r.count("MaxConnectionsPerIP", 0, 0),
		maxQueue:         r.count("MaxQueue", DefaultMaxQueue, 1),
		maxQueueBytes:    r.count("MaxQueueBytes", DefaultMaxQueueBytes, 1024),
		maxInflight:      r.count("MaxInflight", DefaultMaxInflight, 1),
		maxTopicLen:      r.count("MaxTopicLen", DefaultMaxTopicLen, 16),
		rate:             r.count("MaxRequestsPerSecond", 0, 0),
		singleSession:    r.boolean("SingleSession", true),
		closeListeners:   r.strings(settingCloseListeners),
		connectTimeout:   r.duration("ConnectTimeout", DefaultConnectTimeout),
		idleTimeout:      r.duration("IdleTimeout", DefaultIdleTimeout),
		maxKeepAlive:     r.duration("MaxKeepAlive", DefaultMaxKeepAlive),
		wsOrigins:        r.strings("WSOrigins"),
		notifyMaxPending: r.count("MaxPendingCloseEvents", defaultNotifyMaxPending, 1),
	}
	c.burst = r.count("RequestBurst", max(c.rate, 1)*2, 1)
	c.sessExpiry = r.duration("SessionExpiry", DefaultSessionExpiry)
	if c.sessExpiry > MaxSessionExpiry {
		r.errorf("SessionExpiry", "at most %v (sessions live in the gate's memory), got %v", MaxSessionExpiry, c.sessExpiry)
	}
	c.sessQueueAge = r.duration("SessionQueueAge", c.sessExpiry)
	c.sessQueueMax = r.count("SessionQueueMax", DefaultSessionQueueMax, 1)
	if c.sessQueueMax > MaxSessionQueueMax {
		r.errorf("SessionQueueMax", "at most %d (QoS 1 packet ids are 16 bits), got %d", MaxSessionQueueMax, c.sessQueueMax)
	}
	c.sessQueueBytes = r.count("SessionQueueBytes", DefaultSessionQueueBytes, 1024)
	c.sessInflight = r.count("SessionInflight", DefaultSessionInflight, 1)
	c.maxAway = r.count("MaxAwaySessions", DefaultMaxAwaySessions, 1)
	if c.sessInflight > c.sessQueueMax {
		c.sessInflight = c.sessQueueMax
	}
	if ms := r.count("ConnectTimeoutMs", 0, 1); ms > 0 { // mqant-era name
		c.connectTimeout = time.Duration(ms) * time.Millisecond
	}
	cert, key := r.str("TLSCertFile", ""), r.str("TLSKeyFile", "")
	switch {
	case cert == "" && key != "":
		r.errorf("TLSCertFile", "missing; TLSKeyFile is set and TLS needs both")
	case cert != "" && key == "":
		r.errorf("TLSKeyFile", "missing; TLSCertFile is set and TLS needs both")
	case cert != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			r.errorf("TLSCertFile", "%v", err)
		} else {
			c.tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		}
	}
	r.unknown()
	if c.tcpAddr == "" && c.wsAddr == "" {
		r.errors("TCPAddr", "set TCPAddr or WSAddr (or both); neither is set")
	}
	return c, errors.Join(r.errs...)
}

func (r *settingsReader) errors(key, msg string) { r.errorf(key, "%s", msg) }
