package mqant_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/mqant"
)

// TestAdminFlagRefused: an -admin that is no host:port (nor "off") stops
// the start with what is wanted, before anything runs.
func TestAdminFlagRefused(t *testing.T) {
	err := mqant.Run(context.Background(), mqant.Options{Config: "../demo/conf/server.conf", AdminAddr: "8686"},
		func(*core.App) { t.Fatal("modules registered despite a bad -admin") })
	if err == nil || !strings.Contains(err.Error(), "-admin: want host:port") {
		t.Fatalf("Run with -admin 8686: %v, want it refused", err)
	}
}
