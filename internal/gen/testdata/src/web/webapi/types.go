// Package webapi holds the messages of the web golden test: every Go type
// the client SDK maps.
package webapi

import (
	"encoding/json"
	"net"
	"time"

	"github.com/mqantgen/mqantgen/internal/gen/testdata/src/web/other"
)

// Level is a named integer: clients see a number.
type Level int8

// Kinds mirrors every kind of field.
type Kinds struct {
	Name     string             `json:"name"`
	Count    int                `json:"count"`
	Small    Level              `json:"small"`
	Big      uint64             `json:"big"`
	Ratio    float64            `json:"ratio"`
	OK       bool               `json:"ok"`
	Tags     []string           `json:"tags"`
	Grid     [3]int             `json:"grid"`
	Scores   map[string]int     `json:"scores"`
	ByID     map[int]*Item      `json:"byId"`
	Maybe    *string            `json:"maybe"`
	Opt      string             `json:"opt,omitempty"`
	Zero     int                `json:"zero,omitzero"`
	When     time.Time          `json:"when"`
	Took     time.Duration      `json:"took"`
	Blob     []byte             `json:"blob"`
	Raw      json.RawMessage    `json:"raw"`
	Anything any                `json:"anything"`
	IP       net.IP             `json:"ip"` // a TextMarshaler: a string
	Quoted   int64              `json:"quoted,string"`
	Inline   struct{ X, Y int } `json:"inline"`
	Matrix   [][]*float32       `json:"matrix"`
	Nested   Item               `json:"nested"`
	Other    other.Item         `json:"other"`
	Untagged string
	Skipped  string `json:"-"`
	Dash     string `json:"-,"`
	Odd      string `json:"odd-name"`
	hidden   string
}

// Item is a nested struct.
type Item struct {
	ID   int    `json:"id"`
	Next *Item  `json:"next,omitempty"` // recursive
	Note string `json:"note"`
}

// Base is embedded: its fields are promoted.
type Base struct {
	Seq  int    `json:"seq"`
	Kind string `json:"kind"`
}

// Extra is embedded through a pointer: its fields may be absent.
type Extra struct {
	Hint string `json:"hint"`
}

// Envelope embeds structs.
type Envelope struct {
	Base
	*Extra
	Kind  int    `json:"kind"` // shallower: wins over Base.Kind
	Named Base   `json:"named"`
	Items []Item `json:"items"`
}

// Tick is pushed every second.
//
//mqant:push Web/Tick
type Tick struct {
	N int `json:"n"`
}

// OnNews is pushed when something happens.
//
//mqant:push Web/OnNews
type OnNews struct {
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}
