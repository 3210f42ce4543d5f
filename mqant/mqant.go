// Package mqant runs a server process in one call: it reads the config,
// registers the modules, and runs them with in-process RPC when this
// process runs every configured module, or through RabbitMQ when the
// config spreads them over several processes.
//
//	func main() {
//		mqant.Main(func(app *core.App) {
//			app.Register(gate.Gate_Type, gate.New())
//			app.Register(lobby.Lobby_Type, lobby.New)
//		})
//	}
package mqant

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/core/rabbitmq"
)

// Options says how Run starts a process. The zero value reads
// "server.conf", picks the modules whose Host is this machine, logs at
// info level to stderr and waits 30 s for RabbitMQ.
type Options struct {
	Config     string        // config file (default "server.conf")
	ProcessID  string        // run the modules with this ProcessID; "" picks by Host
	Logger     *slog.Logger  // default: text to stderr at info level
	BrokerWait time.Duration // how long to wait for RabbitMQ at start (default 30 s)
	AdminAddr  string        // when set, overrides the config's Admin.Addr; "off": no admin listener
}

// Flags defines the usual command-line flags on fs (-conf, whose default
// is conf, -pid, -log, -broker-wait, -admin) and returns a function that,
// after fs.Parse, gives the Options they set.
func Flags(fs *flag.FlagSet, conf string) func() (Options, error) {
	confFile := fs.String("conf", conf, "config file")
	pid := fs.String("pid", "", "process id: run the modules whose ProcessID matches (default: those whose Host is this machine)")
	level := fs.String("log", "info", "log level: debug, info, warn, error")
	wait := fs.Duration("broker-wait", 30*time.Second, "how long to wait for RabbitMQ at start-up")
	admin := fs.String("admin", "", "admin listener address (metrics, console), overriding the config's Admin.Addr, so processes sharing one config each get their own; \"off\": none")
	return func() (Options, error) {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(*level)); err != nil {
			return Options{}, fmt.Errorf("-log: %w", err)
		}
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
		return Options{Config: *confFile, ProcessID: *pid, Logger: log, BrokerWait: *wait, AdminAddr: *admin}, nil
	}
}

// Main is a server's whole main: it parses the flags of Flags, runs the
// process with Run until SIGINT or SIGTERM, and exits with status 1 and
// the error on stderr when the start fails.
func Main(register func(app *core.App)) {
	opts := Flags(flag.CommandLine, "server.conf")
	flag.Parse()
	o, err := opts()
	if err == nil {
		err = Run(context.Background(), o, register)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Run loads the config, lets register add the module types, and runs the
// process's modules until ctx ends or SIGINT/SIGTERM arrives. RPC stays in
// the process when it runs every configured module; otherwise it goes
// through the RabbitMQ broker of the config, which must be reachable
// within BrokerWait.
func Run(ctx context.Context, o Options, register func(app *core.App)) error {
	if o.Config == "" {
		o.Config = "server.conf"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.BrokerWait == 0 {
		o.BrokerWait = 30 * time.Second
	}
	log := o.Logger
	cfg, err := core.LoadConfig(o.Config)
	if err != nil {
		return err
	}
	switch o.AdminAddr {
	case "":
	case "off":
		cfg.Admin.Addr = ""
	default:
		if _, _, err := net.SplitHostPort(o.AdminAddr); err != nil {
			return fmt.Errorf("-admin: want host:port such as 127.0.0.1:8686, or off: %w", err)
		}
		cfg.Admin.Addr = o.AdminAddr
	}
	app := core.NewApp(cfg, core.Options{ProcessID: o.ProcessID, Logger: log})
	register(app)
	all, err := app.RunsEverything()
	if err != nil {
		return err
	}
	if all {
		log.Info("RPC in-process (every module runs here)")
		return app.Run(ctx)
	}
	t, err := rabbitmq.ForConfig(cfg, log)
	if err != nil {
		return fmt.Errorf("this process runs only some of the modules, so it needs RabbitMQ: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, o.BrokerWait)
	err = t.WaitReady(wctx)
	cancel()
	if err != nil {
		_ = t.Close()
		return err
	}
	app.SetRemote(t)
	log.Info("RPC between processes through RabbitMQ", "brokers", t.String())
	return app.Run(ctx)
}
