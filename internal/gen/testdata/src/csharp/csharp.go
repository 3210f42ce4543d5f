// Package csharp is the input of the C# golden test: names C# cannot spell
// as they are, keywords, a field named like its class, anonymous objects in
// requests, replies and lists, and a push without the On prefix.
package csharp

import "context"

// Item has a field named like itself, a keyword, and names C# must rename.
type Item struct {
	Item    string `json:"Item"`
	Class   string `json:"class"`
	Odd     string `json:"odd-name"`
	Odd2    string `json:"odd_name"`
	Digit   int32  `json:"9lives"`
	Small   uint8  `json:"small"`
	Wide    uint64 `json:"wide"`
	MaybeN  *int16 `json:"maybeN"`
	Ratio   float32
	Points  []struct{ X, Y float64 } `json:"points"`
	Checked *bool                    `json:"checked,omitempty"`
}

// Ping is pushed without the On prefix.
//
//mqant:push Cs/Ping
type Ping struct {
	Seq int `json:"seq"`
}

// Cs is the module.
//
//mqant:module Cs
type Cs struct{}

// Handler_Put takes an item and answers an anonymous object.
func (c *Cs) Handler_Put(ctx context.Context, req *Item) (*struct {
	OK bool `json:"ok"`
}, error) {
	return nil, nil
}

// Handler_Anon takes an anonymous request.
func (c *Cs) Handler_Anon(req *struct {
	Name string `json:"name"`
}) error {
	return nil
}

// Handler_List answers a list of lists.
func (c *Cs) Handler_List(ctx context.Context) ([][]*Item, error) { return nil, nil }
