// Package login is the chat demo's Login module: it checks a user name and
// password and binds the client's session to the user.
package login

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen -out ../../generated/logingen .

import (
	"context"
	"errors"
	"sync"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/login/loginapi"
	"github.com/mqantgen/mqantgen/gate"
)

// Login is the Login module.
//
//mqant:module
type Login struct {
	core.BaseModule

	mu    sync.Mutex
	users map[string]*loginapi.User
}

// Setup prepares Login; the generated OnInit calls it.
func (l *Login) Setup(*core.App, *core.ModuleSettings) error {
	l.users = map[string]*loginapi.User{}
	return nil
}

// Handler_Login binds the session to the user name. The demo accepts any
// non-empty password.
func (l *Login) Handler_Login(ctx context.Context, s *gate.Session, req *loginapi.LoginRequest) (string, error) {
	if req.UserName == "" || req.PassWord == "" {
		return "", errors.New("userName or passWord cannot be nil")
	}
	if err := s.Bind(ctx, req.UserName); err != nil {
		return "", err
	}
	l.mu.Lock()
	u := l.users[req.UserName]
	if u == nil {
		u = &loginapi.User{Name: req.UserName}
		l.users[req.UserName] = u
	}
	u.SessionID, u.Gate = s.GetSessionID(), s.GetServerID()
	u.Logins++
	l.mu.Unlock()
	return "login success " + req.UserName, nil
}

// GetUser returns what Login knows of a user who has logged in.
//
//mqant:rpc
func (l *Login) GetUser(ctx context.Context, uid string) (*loginapi.User, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[uid]
	if u == nil {
		return nil, errors.New("Not Logined")
	}
	c := *u
	return &c, nil
}
