package core

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigGood(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
// a comment line, as in mqant's files
{
  "Rabbitmq": {"Uri": "amqp://guest:guest@127.0.0.1:5672/"},
  "RPC": {"Timeout": "3s"},
  "GC": {"HeapFloorMB": 128},
  "Module": {
    "Gate":  [{"Id": "g1", "Host": "127.0.0.1", "ProcessID": "p1", "Settings": {"TCPAddr": ":3563", "MaxMsgLen": 4096}}],
    // comments between entries too
    "Chat":  [{"Id": "c1", "Host": "127.0.0.1", "ProcessID": "p2"}, {"Id": "c2", "Host": "10.0.0.2", "ProcessID": "p3"}]
  }
}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rabbitmq == nil || cfg.Rabbitmq.URI != "amqp://guest:guest@127.0.0.1:5672/" {
		t.Errorf("Rabbitmq = %+v", cfg.Rabbitmq)
	}
	if cfg.RPC.Timeout != 3*time.Second {
		t.Errorf("timeout = %v", cfg.RPC.Timeout)
	}
	if cfg.GC.heapFloorMB() != 128 {
		t.Errorf("heap floor = %d MiB, want 128", cfg.GC.heapFloorMB())
	}
	if len(cfg.Modules) != 3 {
		t.Fatalf("modules = %d, want 3", len(cfg.Modules))
	}
	// Types sorted by name, instances in file order.
	got := []string{}
	for _, m := range cfg.Modules {
		got = append(got, m.Type+"/"+m.ID)
	}
	if strings.Join(got, ",") != "Chat/c1,Chat/c2,Gate/g1" {
		t.Errorf("order = %v", got)
	}
	n, err := cfg.Modules[2].Int("MaxMsgLen", 1)
	if err != nil || n != 4096 {
		t.Errorf("MaxMsgLen = %d, %v", n, err)
	}
	if def, _ := cfg.Modules[0].Int("Missing", 7); def != 7 {
		t.Errorf("default = %d", def)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"Module": {"Chat": [{"Id": "c"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rabbitmq != nil {
		t.Error("no Rabbitmq section must mean in-process only")
	}
	if cfg.RPC.Timeout != DefaultRPCTimeout {
		t.Errorf("timeout = %v, want %v", cfg.RPC.Timeout, DefaultRPCTimeout)
	}
	if cfg.GC.heapFloorMB() != DefaultHeapFloorMB {
		t.Errorf("heap floor = %d MiB, want the default %d", cfg.GC.heapFloorMB(), DefaultHeapFloorMB)
	}
	off, err := ParseConfig([]byte(`{"GC": {"HeapFloorMB": 0}, "Module": {"Chat": [{"Id": "c"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if off.GC.heapFloorMB() > 0 {
		t.Errorf("HeapFloorMB 0 in the file: floor %d MiB, want none", off.GC.heapFloorMB())
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		conf string
		want []string // each must appear in the error
	}{
		{"not JSON", `{"Module": `, []string{"line 1, column 11: invalid JSON: unexpected end of JSON input"}},
		{"syntax error placed", "{\n  \"Module\": {\n    \"A\": [{\"Id\": \"a\"},]\n  }\n}", []string{"line 3, column 23: invalid JSON: invalid character ']'"}},
		{"number out of range placed", "{\"Module\": {\"A\": [{\"Id\": \"a\",\n \"Host\": 1e999}]}}", []string{"line 2, column 10: invalid JSON: cannot unmarshal number 1e999"}},
		{"top level not object", `[1]`, []string{"$: want an object, got an array"}},
		{"no Module", `{}`, []string{"$.Module: missing"}},
		{"unknown top field", `{"Modules": {}, "Module": {"A": [{"Id": "a"}]}}`, []string{"$.Modules: unknown field"}},
		{"instances not array", `{"Module": {"Chat": {"Id": "x"}}}`, []string{"$.Module.Chat: want an array of module instances, got an object"}},
		{"empty instances", `{"Module": {"Chat": []}}`, []string{"$.Module.Chat: want at least one instance"}},
		{"missing Id", `{"Module": {"Chat": [{"Host": "127.0.0.1"}]}}`, []string{"$.Module.Chat[0].Id: missing; want a string"}},
		{"Id wrong type", `{"Module": {"Chat": [{"Id": 5}]}}`, []string{"$.Module.Chat[0].Id: want a string, got a number"}},
		{"duplicate Id", `{"Module": {"Chat": [{"Id": "x"}], "Gate": [{"Id": "x"}]}}`, []string{`$.Module.Gate[0].Id: duplicate Id "x" (also at $.Module.Chat[0].Id)`}},
		{"bad address", `{"Module": {"Gate": [{"Id": "g", "Settings": {"TCPAddr": "nope"}}]}}`, []string{`$.Module.Gate[0].Settings.TCPAddr: want host:port`}},
		{"bad port", `{"Module": {"Gate": [{"Id": "g", "Settings": {"WSAddr": ":99999"}}]}}`, []string{`$.Module.Gate[0].Settings.WSAddr: want host:port`}},
		{"bad host", `{"Module": {"Gate": [{"Id": "g", "Host": "a b"}]}}`, []string{`$.Module.Gate[0].Host: want an IP address or host name`}},
		{"bad type name", `{"Module": {"Ch-at": [{"Id": "g"}]}}`, []string{`$.Module["Ch-at"]: module type must be an identifier`}},
		{"key with newline", "{\"Module\": {\"A\": [{\"Id\": \"a\", \"x\\ny\": 1}]}}", []string{`$.Module.A[0]["x\ny"]: unknown field`}},
		{"bad rabbit uri", `{"Rabbitmq": {"Uri": "http://x"}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.Rabbitmq.Uri: want an amqp:// or amqps:// URI`}},
		{"bad timeout", `{"RPC": {"Timeout": "soon"}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.RPC.Timeout: want a positive duration`}},
		{"heap floor not a number", `{"GC": {"HeapFloorMB": "32MB"}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.GC.HeapFloorMB: want a whole number of MiB from 0 (no floor) to 65536, got a string`}},
		{"heap floor fraction", `{"GC": {"HeapFloorMB": 1.5}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.GC.HeapFloorMB: want a whole number of MiB from 0 (no floor) to 65536, got 1.5`}},
		{"heap floor negative", `{"GC": {"HeapFloorMB": -8}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.GC.HeapFloorMB: want a whole number`}},
		{"heap floor misspelt", `{"GC": {"HeapFloor": 8}, "Module": {"A": [{"Id": "a"}]}}`, []string{`$.GC.HeapFloor: unknown field (known: HeapFloorMB)`}},
		{"unknown instance field", `{"Module": {"A": [{"Id": "a", "Pid": "x"}]}}`, []string{`$.Module.A[0].Pid: unknown field`}},
		{"every error reported", `{"Module": {"A": [{"Id": 1}, {"Id": "b", "Host": "?"}]}}`,
			[]string{`$.Module.A[0].Id: want a string`, `$.Module.A[1].Host: want an IP address`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.conf))
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig(t.TempDir() + "/nope.conf")
	if err == nil || !strings.Contains(err.Error(), "nope.conf") {
		t.Fatalf("err = %v", err)
	}
}

func TestSettingsIntRejectsFraction(t *testing.T) {
	m := &ModuleSettings{ID: "g", Settings: map[string]any{"N": 1.5, "S": "x"}}
	if _, err := m.Int("N", 0); err == nil || !strings.Contains(err.Error(), "setting N: want a whole number") {
		t.Errorf("err = %v", err)
	}
	if _, err := m.Int("S", 0); err == nil {
		t.Error("string accepted as a number")
	}
}
