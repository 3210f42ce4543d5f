package core

// Module is one part of a server, with mqant's lifecycle names.
type Module interface {
	// GetType is the module type, the key under "Module" in the config.
	GetType() string
	// OnInit prepares the module; an error stops the app before it starts.
	OnInit(app *App, settings *ModuleSettings) error
	// Run does the module's own work until closeSig is closed.
	Run(closeSig chan bool)
	// OnDestroy releases what OnInit took, after Run has returned.
	OnDestroy()
}

// Frontend is implemented by modules that take traffic from outside the
// deployment, such as the gate. The App stops them before the other
// modules of its process, so the calls they still have in flight, and the
// session-closed events their last clients cause, find the modules they
// need running.
type Frontend interface {
	Frontend()
}

// StartChecker is implemented by modules that check, once every module of
// the process has run OnInit, what depends on the others (the gate checks
// that its session-closed listeners have an OnSessionClosed method). An
// error stops the start.
type StartChecker interface {
	CheckStart(app *App) error
}

// RPCModule is a module with an RPC server. BaseModule provides it.
type RPCModule interface {
	RPCServer() *Server
}

// BaseModule gives a module its RPC server, settings and routing helpers.
// Embed it and call Init from OnInit.
type BaseModule struct {
	App      *App
	Settings *ModuleSettings
	server   *Server
}

// Init sets the module up with the app and its settings, creating its RPC
// server. Register generated handlers on RPCServer() after calling it.
func (m *BaseModule) Init(app *App, settings *ModuleSettings) {
	m.App = app
	m.Settings = settings
	m.server = NewServer(settings.Type, settings.ID, app, app.Logger())
	m.server.metrics = app.rpc
	m.server.tracer = app.tracer
}

// RPCServer returns the module's RPC server.
func (m *BaseModule) RPCServer() *Server { return m.server }

// GetServerID returns this instance's id.
func (m *BaseModule) GetServerID() string { return m.Settings.ID }

// GetRouteServersByType returns the ids of every configured instance of a
// module type, in any process.
func (m *BaseModule) GetRouteServersByType(typ string) []string {
	return m.App.ServerIDs(typ)
}

// Run waits for closeSig; modules without work of their own keep it.
func (m *BaseModule) Run(closeSig chan bool) { <-closeSig }

// OnDestroy does nothing; override it to release resources.
func (m *BaseModule) OnDestroy() {}
