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

// Stats is a flat result with omitted-when-empty fields: generated code
// writes its JSON.
type Stats struct {
	Name   string `json:"name"`
	Level  int8   `json:"level,omitempty"`
	Gold   uint64 `json:"gold,omitempty"`
	Online bool   `json:"online,omitempty"`
	Note   string `json:"note,omitempty"`
	Skip   string `json:"-"`
	hidden int
}

// Score has a float: the codec writes it.
type Score struct {
	Points float64 `json:"points"`
}
