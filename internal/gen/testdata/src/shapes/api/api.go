// Package api holds the shapes module's messages.
package api

type Req struct {
	Name string `json:"name"`
}

type Reply struct {
	Greeting string `json:"greeting"`
}

type User struct {
	ID      string   `json:"id"`
	Friends []string `json:"friends,omitempty"`
}
