package core

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// configSeeds are the fuzzer's starting points: the demo's shapes, valid
// and broken in each way the validator knows.
var configSeeds = []string{
	`{"Module": {"Chat": [{"Id": "c"}]}}`,
	`// comment
{
  "Rabbitmq": {"Uri": "amqp://guest:guest@127.0.0.1:5672/"},
  "RPC": {"Timeout": "3s"},
  "Settings": {"k": [1, 2.5, "x", null, true]},
  "Module": {
    "Gate":  [{"Id": "g1", "Host": "127.0.0.1", "ProcessID": "p1", "Settings": {"TCPAddr": ":3563", "WSAddr": "", "MaxMsgLen": 4096}}],
    // comments between entries too
    "Chat":  [{"Id": "c1", "Host": "example.org", "ProcessID": "p2", "Rabbitmq": {"Uri": "amqps://h/"}}]
  }
}`,
	`{"Module": `,
	`[1]`,
	`{}`,
	`{"Modules": {}, "Module": {"A": [{"Id": "a"}]}}`,
	`{"Module": {"Chat": {"Id": "x"}}}`,
	`{"Module": {"Chat": []}}`,
	`{"Module": {"Chat": [{"Host": "127.0.0.1"}]}}`,
	`{"Module": {"Chat": [{"Id": 5}]}}`,
	`{"Module": {"Chat": [{"Id": "x"}], "Gate": [{"Id": "x"}]}}`,
	`{"Module": {"Gate": [{"Id": "g", "Settings": {"TCPAddr": "nope"}}]}}`,
	`{"Module": {"Gate": [{"Id": "g", "Settings": {"WSAddr": ":99999", "TCPAddr": 7}}]}}`,
	`{"Module": {"Gate": [{"Id": "g", "Host": "a b"}]}}`,
	`{"Rabbitmq": {"Uri": "http://x"}, "RPC": {"Timeout": "-1s"}, "Module": {"9x": [1]}}`,
	`{"RPC": 3, "Rabbitmq": [], "Settings": "s", "Module": {"A": [{"Id": " ", "Settings": 1}]}}`,
	"{\"Module\": {\"A\": [{\"Id\": \"a\"}]},\n\"Module\": 1}",
	`{"Module": {"A": [{"Id": "a", "Host": 1e999}]}}`,
	"{\n  \"Module\": {\n    \"A\": [{\"Id\": \"a\"},]\n  }\n}",
	"\xff\xfe{}",
}

// errorShape is what starts every error ParseConfig reports: a JSON path
// ($, $.Key, $.Key[3], $["odd key"]) or the line and column of a syntax
// error.
var errorShape = regexp.MustCompile(`^(\$(\.[A-Za-z_][A-Za-z0-9_]*|\["([^"\\]|\\.)*"\]|\[[0-9]+\])*: |line [0-9]+, column [0-9]+: )`)

// FuzzParseConfig feeds arbitrary text to ParseConfig: it must never panic,
// it returns a config or an error but not both, and every error it reports
// is one line that names where the problem is (a JSON path or a line), so
// an operator can find it.
func FuzzParseConfig(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			for _, m := range cfg.Modules {
				if m.ID == "" || m.Type == "" {
					t.Fatalf("accepted a module without type or id: %+v", m)
				}
			}
			return
		}
		if cfg != nil {
			t.Fatalf("both a config and an error: %v", err)
		}
		for _, e := range leafErrors(err) {
			msg := e.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error spans lines: %q", msg)
			}
			if !errorShape.MatchString(msg) {
				t.Errorf("error names neither a JSON path nor a line: %q", msg)
			}
		}
	})
}

// leafErrors flattens errors.Join trees.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func TestLeafErrors(t *testing.T) {
	a, b, c := errors.New("a"), errors.New("b"), errors.New("c")
	if got := leafErrors(errors.Join(a, errors.Join(b, c))); len(got) != 3 {
		t.Fatalf("got %v", got)
	}
}
