// Package chatapi holds the messages of the Chat module: requests, and the
// pushes it sends (marked //mqant:push, so mqantgen generates typed senders
// and client listeners for them).
package chatapi

// JoinRequest is the body of Chat/Handler_JoinChat.
type JoinRequest struct {
	RoomName string `json:"roomName"`
}

// SayRequest is the body of Chat/Handler_Say.
type SayRequest struct {
	RoomName string `json:"roomName"`
	Say      string `json:"say"`
}

// OnJoin is pushed on Chat/OnJoin to every member when someone joins.
//
//mqant:push Chat/OnJoin
type OnJoin struct {
	RoomName string `json:"roomName"`
	UserName string `json:"userName"`
}

// OnSay is pushed on Chat/OnSay to every member of the room.
//
//mqant:push Chat/OnSay
type OnSay struct {
	RoomName string `json:"roomName"`
	Say      string `json:"say"`
	UserName string `json:"userName"`
}

// OnLeave is pushed on Chat/OnLeave when a member leaves or disconnects.
//
//mqant:push Chat/OnLeave
type OnLeave struct {
	RoomName string `json:"roomName"`
	UserName string `json:"userName"`
}
