// Package chat is the chat demo's Chat module: rooms, joining, saying, and
// leaving when a connection closes.
package chat

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen -out ../../generated/chatgen .

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/mqantgen/mqantgen/core"
	"github.com/mqantgen/mqantgen/demo/chat/chatapi"
	"github.com/mqantgen/mqantgen/gate"
	"github.com/mqantgen/mqantgen/generated/chatgen"
	"github.com/mqantgen/mqantgen/generated/logingen"
)

// Chat is the Chat module.
//
//mqant:module
type Chat struct {
	core.BaseModule
	login *logingen.LoginClient

	mu    sync.Mutex
	rooms map[string]*gate.Group // by room name
}

// Setup prepares Chat; the generated OnInit calls it.
func (c *Chat) Setup(app *core.App, _ *core.ModuleSettings) error {
	c.rooms = map[string]*gate.Group{}
	c.login = logingen.NewLoginClient(app)
	return nil
}

var errNotLogined = errors.New("Not Logined")

// Handler_JoinChat puts the user in a room and tells every member.
func (c *Chat) Handler_JoinChat(ctx context.Context, s *gate.Session, req *chatapi.JoinRequest) (string, error) {
	if req.RoomName == "" {
		return "", errors.New("roomName cannot be nil")
	}
	if s.IsGuest() {
		return "", errNotLogined
	}
	// Ask Login, through its generated client, whether it knows the user.
	if _, err := c.login.GetUser(ctx, s.GetUserID()); err != nil {
		return "", err
	}
	c.mu.Lock() // held while adding: an emptied room is deleted under it
	room := c.rooms[req.RoomName]
	if room == nil {
		room = gate.NewGroup()
		c.rooms[req.RoomName] = room
	}
	added := room.Add(s)
	// Who hears of the join is who was in when it happened: a user joining
	// right after does not hear of this one too.
	members := room.Members()
	c.mu.Unlock()
	if !added {
		return "", errors.New("Already in this chat room")
	}
	c.pushed(chatgen.OnJoin_Topic, chatgen.BroadcastOnJoin(ctx, c.App, members, &chatapi.OnJoin{RoomName: req.RoomName, UserName: s.GetUserID()}))
	return "join success", nil
}

// Handler_Say sends a message to every member of a room.
func (c *Chat) Handler_Say(ctx context.Context, s *gate.Session, req *chatapi.SayRequest) (string, error) {
	if req.RoomName == "" || req.Say == "" {
		return "", errors.New("roomName or say cannot be nil")
	}
	if s.IsGuest() {
		return "", errNotLogined
	}
	c.mu.Lock()
	room := c.rooms[req.RoomName]
	c.mu.Unlock()
	if room == nil {
		return "", errors.New("No room")
	}
	if !room.Has(s) {
		return "", errors.New("You haven't been in the room yet")
	}
	c.pushed(chatgen.OnSay_Topic, chatgen.BroadcastOnSay(ctx, c.App, room.Members(), &chatapi.OnSay{RoomName: req.RoomName, Say: req.Say, UserName: s.GetUserID()}))
	return "say success", nil
}

// OnSessionClosed is called by the gate when a client's connection closes:
// the user leaves every room, and the rooms hear of it.
//
//mqant:rpc
func (c *Chat) OnSessionClosed(ctx context.Context, s *gate.Session) error {
	// Membership is found by session, not by the user now bound: the
	// connection may have logged in under another name since it joined.
	type leave struct {
		room, user string
		members    []gate.Member
	}
	var leaves []leave
	c.mu.Lock()
	for name, room := range c.rooms {
		uids := room.RemoveSession(s.GetSessionID())
		switch {
		case len(uids) == 0:
		case room.Len() == 0:
			delete(c.rooms, name)
		default:
			for _, uid := range uids {
				leaves = append(leaves, leave{name, uid, room.Members()})
			}
		}
	}
	c.mu.Unlock()
	sort.Slice(leaves, func(i, j int) bool { return leaves[i].room < leaves[j].room })
	for _, l := range leaves {
		c.pushed(chatgen.OnLeave_Topic, chatgen.BroadcastOnLeave(ctx, c.App, l.members, &chatapi.OnLeave{RoomName: l.room, UserName: l.user}))
	}
	return nil
}

// pushed logs a push that failed: the request that caused it still succeeds.
func (c *Chat) pushed(topic string, err error) {
	if err != nil {
		c.App.Logger().Warn("chat: push failed", "topic", topic, "err", err)
	}
}
