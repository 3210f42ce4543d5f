package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Config is a parsed and validated server.conf.
type Config struct {
	// Rabbitmq, when set, lets modules in different processes reach each
	// other through the broker. Nil means in-process RPC only.
	Rabbitmq *RabbitmqConfig
	// RPC holds client-side defaults.
	RPC RPCConfig
	// Modules lists every module instance of the whole deployment, in the
	// order the file gives them (types sorted by name, instances in order).
	Modules []*ModuleSettings
	// Settings are free-form global settings.
	Settings map[string]any
	// Admin is the process's admin HTTP listener (metrics, pprof).
	Admin AdminConfig
	// GC tunes the Go collector for a server's garbage.
	GC GCConfig
}

// GCConfig tunes the Go garbage collector of each process.
type GCConfig struct {
	// HeapFloorMB lets the heap grow to this many MiB before the collector
	// runs, however little of it is live (GOGC alone runs it every time the
	// heap doubles, from 4 MiB). It changes nothing once the live heap is
	// half the floor or more. 0: DefaultHeapFloorMB; negative: no floor. In
	// a config file, 0 means no floor and a missing key the default.
	HeapFloorMB int
}

// maxHeapFloorMB bounds GC.HeapFloorMB in a config file (64 GiB).
const maxHeapFloorMB = 64 << 10

func (g GCConfig) heapFloorMB() int {
	if g.HeapFloorMB == 0 {
		return DefaultHeapFloorMB
	}
	return g.HeapFloorMB
}

// AdminConfig configures the admin HTTP listener of each process.
type AdminConfig struct {
	// Addr is host:port; empty: no listener. Loopback unless you mean it.
	Addr string
	// Token, when set, must come as "Authorization: Bearer <token>".
	Token string
	// Pprof serves /debug/pprof/ as well.
	Pprof bool
}

// RabbitmqConfig says where the broker is.
type RabbitmqConfig struct {
	URI string
}

// RPCConfig holds RPC defaults.
type RPCConfig struct {
	// Timeout bounds a call whose context has no deadline. Default 10s.
	Timeout time.Duration
}

// ModuleSettings describes one module instance.
type ModuleSettings struct {
	Type      string // the key under "Module"
	ID        string // unique across the deployment
	Host      string
	ProcessID string
	Rabbitmq  *RabbitmqConfig // overrides the global section for this instance
	Settings  map[string]any
	// Path is where the instance is in the config file, such as
	// "$.Module.Gate[0]", for modules' own settings errors. Empty for
	// settings built in code.
	Path string
}

// DefaultRPCTimeout is the deadline of a call whose context has none.
const DefaultRPCTimeout = 10 * time.Second

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses JSON config text. Lines whose first non-blank
// characters are "//" are comments. Every problem found is reported on one
// line of its own: a syntax error with its line and column, anything else
// with the JSON path of the offending value and what was expected.
func ParseConfig(data []byte) (*Config, error) {
	data = stripComments(data)
	// encoding/json rather than the framework's codec: the config is read
	// once, and its errors carry the offset an operator needs to find a
	// typo (json-iterator's quote the raw bytes around it, newlines and
	// all, with no position).
	var root any
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(data, err)
	}
	v := &validator{}
	cfg := v.config(root)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return cfg, nil
}

// stripComments blanks whole-line // comments, keeping line numbers.
func stripComments(data []byte) []byte {
	lines := bytes.Split(data, []byte("\n"))
	for i, l := range lines {
		if bytes.HasPrefix(bytes.TrimSpace(l), []byte("//")) {
			lines[i] = nil
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// syntaxError places a decoding error at its line and column.
func syntaxError(data []byte, err error) error {
	off := int64(len(data))
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		// Offset is past the value and the byte after it: point at the
		// value's start.
		off = te.Offset - 1
		if lit, ok := strings.CutPrefix(te.Value, "number "); ok {
			off -= int64(len(lit))
		}
	}
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	if se != nil && col > 0 {
		col-- // Offset is just past the offending character
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return fmt.Errorf("line %d, column %d: invalid JSON: %s", line, col+1, msg)
}

// key extends a JSON path by an object key: $.Module.Chat, or
// $.Module["odd key"] when the key is not an identifier, so that a key
// holding dots, quotes or newlines cannot forge another path or split the
// error over lines.
func key(path, k string) string {
	if typeName.MatchString(k) {
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

type validator struct{ errs []error }

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

// numberOrType is a number as written, anything else by its JSON type.
func numberOrType(x any) string {
	if n, ok := x.(float64); ok {
		return strconv.FormatFloat(n, 'g', -1, 64)
	}
	return jsonType(x)
}

func jsonType(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

func (v *validator) object(path string, x any, known ...string) map[string]any {
	m, ok := x.(map[string]any)
	if !ok {
		v.errorf(path, "want an object, got %s", jsonType(x))
		return nil
	}
	if known != nil {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			found := false
			for _, w := range known {
				if k == w {
					found = true
				}
			}
			if !found {
				v.errorf(key(path, k), "unknown field (known: %s)", strings.Join(known, ", "))
			}
		}
	}
	return m
}

func (v *validator) str(path string, m map[string]any, key string, required bool) string {
	x, ok := m[key]
	if !ok {
		if required {
			v.errorf(path+"."+key, "missing; want a string")
		}
		return ""
	}
	s, ok := x.(string)
	if !ok {
		v.errorf(path+"."+key, "want a string, got %s", jsonType(x))
		return ""
	}
	if required && strings.TrimSpace(s) == "" {
		v.errorf(path+"."+key, "must not be empty")
	}
	return s
}

func (v *validator) config(root any) *Config {
	cfg := &Config{RPC: RPCConfig{Timeout: DefaultRPCTimeout}}
	m := v.object("$", root, "Rabbitmq", "RPC", "Module", "Settings", "Log", "Admin", "GC")
	if m == nil {
		return cfg
	}
	if x, ok := m["Rabbitmq"]; ok && x != nil {
		cfg.Rabbitmq = v.rabbit("$.Rabbitmq", x)
	}
	if x, ok := m["RPC"]; ok {
		if rm := v.object("$.RPC", x, "Timeout"); rm != nil {
			if s := v.str("$.RPC", rm, "Timeout", false); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil || d <= 0 {
					v.errorf("$.RPC.Timeout", "want a positive duration such as \"10s\", got %q", s)
				} else {
					cfg.RPC.Timeout = d
				}
			}
		}
	}
	if x, ok := m["Settings"]; ok {
		cfg.Settings = v.object("$.Settings", x)
	}
	if x, ok := m["Admin"]; ok {
		if am := v.object("$.Admin", x, "Addr", "Token", "Pprof"); am != nil {
			cfg.Admin.Addr = v.str("$.Admin", am, "Addr", false)
			cfg.Admin.Token = v.str("$.Admin", am, "Token", false)
			v.addresses("$.Admin", map[string]any{"Addr": cfg.Admin.Addr})
			if p, ok := am["Pprof"]; ok {
				b, isBool := p.(bool)
				if !isBool {
					v.errorf("$.Admin.Pprof", "want true or false, got %s", jsonType(p))
				}
				cfg.Admin.Pprof = b
			}
		}
	}
	if x, ok := m["GC"]; ok {
		if gm := v.object("$.GC", x, "HeapFloorMB"); gm != nil {
			if f, ok := gm["HeapFloorMB"]; ok {
				n, isNum := f.(float64)
				switch {
				case !isNum || n != float64(int(n)) || n < 0 || n > maxHeapFloorMB:
					v.errorf("$.GC.HeapFloorMB", "want a whole number of MiB from 0 (no floor) to %d, got %s", maxHeapFloorMB, numberOrType(f))
				case n == 0:
					cfg.GC.HeapFloorMB = -1
				default:
					cfg.GC.HeapFloorMB = int(n)
				}
			}
		}
	}
	x, ok := m["Module"]
	if !ok {
		v.errorf("$.Module", "missing; want an object of module type -> array of instances")
		return cfg
	}
	mods := v.object("$.Module", x)
	types := make([]string, 0, len(mods))
	for t := range mods {
		types = append(types, t)
	}
	sort.Strings(types)
	ids := map[string]string{}
	for _, t := range types {
		path := key("$.Module", t)
		if !typeName.MatchString(t) {
			v.errorf(path, "module type must be an identifier such as \"Chat\"")
		}
		list, ok := mods[t].([]any)
		if !ok {
			v.errorf(path, "want an array of module instances, got %s", jsonType(mods[t]))
			continue
		}
		if len(list) == 0 {
			v.errorf(path, "want at least one instance")
		}
		for i, item := range list {
			ipath := fmt.Sprintf("%s[%d]", path, i)
			ms := v.instance(ipath, t, item)
			if ms == nil {
				continue
			}
			if prev, dup := ids[ms.ID]; dup && ms.ID != "" {
				v.errorf(ipath+".Id", "duplicate Id %q (also at %s)", ms.ID, prev)
				continue
			}
			ids[ms.ID] = ipath + ".Id"
			cfg.Modules = append(cfg.Modules, ms)
		}
	}
	return cfg
}

var typeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (v *validator) rabbit(path string, x any) *RabbitmqConfig {
	m := v.object(path, x, "Uri")
	if m == nil {
		return nil
	}
	uri := v.str(path, m, "Uri", true)
	if uri != "" && !strings.HasPrefix(uri, "amqp://") && !strings.HasPrefix(uri, "amqps://") {
		v.errorf(path+".Uri", "want an amqp:// or amqps:// URI, got %q", hidePassword(uri))
	}
	return &RabbitmqConfig{URI: uri}
}

// hidePassword masks the password of a URI quoted in an error: "user:pw@"
// becomes "user:***@", whatever the scheme and even when it does not parse.
func hidePassword(uri string) string {
	at := strings.LastIndex(uri, "@")
	start := strings.Index(uri, "://")
	if at < 0 || start < 0 || start+3 > at {
		return uri
	}
	user, _, ok := strings.Cut(uri[start+3:at], ":")
	if !ok {
		return uri
	}
	return uri[:start+3] + user + ":***" + uri[at:]
}

func (v *validator) instance(path, typ string, x any) *ModuleSettings {
	m := v.object(path, x, "Id", "Host", "ProcessID", "Settings", "Rabbitmq")
	if m == nil {
		return nil
	}
	ms := &ModuleSettings{Type: typ, Path: path}
	ms.ID = v.str(path, m, "Id", true)
	ms.Host = v.str(path, m, "Host", false)
	if ms.Host != "" && net.ParseIP(ms.Host) == nil && !hostName.MatchString(ms.Host) {
		v.errorf(path+".Host", "want an IP address or host name, got %q", ms.Host)
	}
	ms.ProcessID = v.str(path, m, "ProcessID", false)
	if x, ok := m["Settings"]; ok {
		ms.Settings = v.object(path+".Settings", x)
		v.addresses(path+".Settings", ms.Settings)
	}
	if x, ok := m["Rabbitmq"]; ok && x != nil {
		ms.Rabbitmq = v.rabbit(path+".Rabbitmq", x)
	}
	return ms
}

var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// addresses checks settings whose names end in "Addr" are host:port.
func (v *validator) addresses(path string, s map[string]any) {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasSuffix(k, "Addr") {
			continue
		}
		str, ok := s[k].(string)
		if !ok {
			v.errorf(key(path, k), "want an address string such as \":3563\", got %s", jsonType(s[k]))
			continue
		}
		if str == "" {
			continue // disabled
		}
		if _, port, err := net.SplitHostPort(str); err != nil || !validPort(port) {
			v.errorf(key(path, k), "want host:port such as \":3563\" or \"127.0.0.1:3563\", got %q", str)
		}
	}
}

func validPort(p string) bool {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return false
		}
	}
	return p != ""
}

// String returns a setting as a string, or def when absent.
func (m *ModuleSettings) String(key, def string) string {
	if s, ok := m.Settings[key].(string); ok {
		return s
	}
	return def
}

// Int returns a whole-number setting, or def when absent. A present value
// that is not a whole number is an error naming the key (the App adds the
// module's id when OnInit returns it).
func (m *ModuleSettings) Int(key string, def int) (int, error) {
	x, ok := m.Settings[key]
	if !ok {
		return def, nil
	}
	var f float64
	switch v := x.(type) {
	case float64:
		f = v
	case int:
		f = float64(v)
	case int64:
		f = float64(v)
	default:
		ok = false
	}
	if !ok || f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
		return def, fmt.Errorf("setting %s: want a whole number, got %v", key, x)
	}
	return int(f), nil
}

// Bool returns a boolean setting, or def when absent.
func (m *ModuleSettings) Bool(key string, def bool) bool {
	if b, ok := m.Settings[key].(bool); ok {
		return b
	}
	return def
}
