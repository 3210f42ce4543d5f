// Package other has a type named like one in webapi: the SDK tells them apart.
package other

// Item shares its name with webapi.Item.
type Item struct {
	Label string `json:"label"`
}
