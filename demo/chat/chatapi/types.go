// Package chatapi holds the messages of the Chat module.
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
type OnJoin struct {
	RoomName string `json:"roomName"`
	UserName string `json:"userName"`
}

// OnSay is pushed on Chat/OnSay to every member of the room.
type OnSay struct {
	RoomName string `json:"roomName"`
	Say      string `json:"say"`
	UserName string `json:"userName"`
}

// OnLeave is pushed on Chat/OnLeave when a member leaves or disconnects.
type OnLeave struct {
	RoomName string `json:"roomName"`
	UserName string `json:"userName"`
}
