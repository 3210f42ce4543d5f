package mqtttest

import (
	"net"
	"net/url"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Cutter is the socket under a Paho client: a test cuts it as a bad
// network would, with no DISCONNECT.
type Cutter struct {
	mu sync.Mutex
	nc net.Conn
}

// Cut closes the socket underneath the client.
func (c *Cutter) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

// Persistent makes a Paho client connect with clean session 0 and these
// credentials; with cc, over a TCP socket the test can cut.
func Persistent(user, pass string, cc *Cutter) func(*mqtt.ClientOptions) {
	return func(o *mqtt.ClientOptions) {
		o.SetCleanSession(false).SetUsername(user).SetPassword(pass)
		if cc == nil {
			return
		}
		o.SetCustomOpenConnectionFn(func(uri *url.URL, _ mqtt.ClientOptions) (net.Conn, error) {
			nc, err := net.DialTimeout("tcp", uri.Host, 5*time.Second)
			if err == nil {
				cc.mu.Lock()
				cc.nc = nc
				cc.mu.Unlock()
			}
			return nc, err
		})
	}
}
