package gate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mqantgen/mqantgen/demo/demotest"
	"github.com/mqantgen/mqantgen/internal/testkit/leakcheck"
	"github.com/mqantgen/mqantgen/internal/testkit/mqtttest"
)

// selfSigned writes a self-signed ECDSA certificate for 127.0.0.1 and its
// key as PEM files in a temp dir, and returns their paths and the
// certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mqantgen test gate"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// pahoTLS connects a Paho Go client with the given TLS config; it returns
// the connect error instead of failing, for the refusal cases.
func pahoTLS(t *testing.T, broker, clientID string, tc *tls.Config) (*pahoClient, error) {
	t.Helper()
	return mqtttest.DialPaho(t, broker, clientID, func(o *mqtt.ClientOptions) { o.SetTLSConfig(tc) })
}

// TestTLS runs the chat over MQTT over TLS (ssl://) and over WebSocket over
// TLS (wss://) with Paho Go trusting the gate's self-signed certificate.
func TestTLS(t *testing.T) {
	leakcheck.Check(t)
	certFile, keyFile, cert := selfSigned(t)
	d := demotest.Start(t, map[string]any{"TLSCertFile": certFile, "TLSKeyFile": keyFile})
	d.Logs.WaitFor(t, `msg="TCP listening" gate=127.0.0.1:Gate addr=`+d.TCPAddr+` tls=true`, 5*time.Second)
	d.Logs.WaitFor(t, `msg="WebSocket listening" gate=127.0.0.1:Gate addr=`+d.WSAddr+` tls=true`, 5*time.Second)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	trusting := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}

	tcp, err := pahoTLS(t, "ssl://"+d.TCPAddr, "tls-tcp", trusting)
	if err != nil {
		t.Fatalf("ssl:// connect: %v", err)
	}
	wss, err := pahoTLS(t, "wss://"+d.WSAddr+"/mqtt", "tls-ws", trusting)
	if err != nil {
		t.Fatalf("wss:// connect: %v", err)
	}
	loginJoin(tcp, "tlsalice", "secure")
	loginJoin(wss, "tlsbob", "secure")
	if got := tcp.Must("Chat/Handler_Say", `{"roomName":"secure","say":"over ssl"}`); got != `"say success"` {
		t.Fatalf("say: %s", got)
	}
	wss.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnSay" && m.Payload == `{"roomName":"secure","say":"over ssl","userName":"tlsalice"}`
	}, "wss client hears the ssl client's say")
	if got := wss.Must("Chat/Handler_Say", `{"roomName":"secure","say":"over wss"}`); got != `"say success"` {
		t.Fatalf("say: %s", got)
	}
	tcp.WaitOne(func(m msg) bool {
		return m.Topic == "Chat/OnSay" && m.Payload == `{"roomName":"secure","say":"over wss","userName":"tlsbob"}`
	}, "ssl client hears the wss client's say")
	for user, network := range map[string]string{"tlsalice": "tcp", "tlsbob": "ws"} {
		if s, err := d.Gate.Lookup(t.Context(), user); err != nil || s == nil || s.Network != network {
			t.Errorf("%s: session %+v (%v), want network %s", user, s, err, network)
		}
	}

	// A client that does not trust the certificate is refused by its own
	// TLS handshake, on both listeners.
	for _, broker := range []string{"ssl://" + d.TCPAddr, "wss://" + d.WSAddr + "/mqtt"} {
		_, err := pahoTLS(t, broker, "untrusting", &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12})
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s without trusting the certificate: err %v, want a certificate error", broker, err)
		}
	}
}

// TestTLSBadConfig: a half or broken TLS configuration stops start-up with
// an error that names the settings.
func TestTLSBadConfig(t *testing.T) {
	leakcheck.Check(t)
	certFile, keyFile, _ := selfSigned(t)
	otherCert, _, _ := selfSigned(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name     string
		settings map[string]any
		want     []string
	}{
		{"cert only", map[string]any{"TLSCertFile": certFile}, []string{"module 127.0.0.1:Gate: OnInit: Settings.TLSKeyFile: missing; TLSCertFile is set and TLS needs both"}},
		{"key only", map[string]any{"TLSKeyFile": keyFile}, []string{"module 127.0.0.1:Gate: OnInit: Settings.TLSCertFile: missing; TLSKeyFile is set and TLS needs both"}},
		{"missing cert file", map[string]any{"TLSCertFile": missing, "TLSKeyFile": keyFile}, []string{"127.0.0.1:Gate", "Settings.TLSCertFile:", "nope.pem"}},
		{"key of another cert", map[string]any{"TLSCertFile": otherCert, "TLSKeyFile": keyFile}, []string{"127.0.0.1:Gate", "Settings.TLSCertFile:", "private key does not match public key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := demotest.StartErr(t, tc.settings)
			if err == nil {
				t.Fatalf("demo started (TCP %s, WS %s) with a bad TLS config", d.TCPAddr, d.WSAddr)
			}
			t.Logf("start-up error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
