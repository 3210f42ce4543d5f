package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"TCPAddr", "WSAddr", "module", "push", "rpc", "sync"}
	for in, want := range map[string]string{
		"TCPAdr": "TCPAddr", "tcpaddr": "TCPAddr", "rcp": "rpc", "modul": "module",
		"Chat": "", "xyzzy": "",
	} {
		if got := Closest(in, known); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}
