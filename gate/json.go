package gate

import jsoniter "github.com/json-iterator/go"

// validJSON reports whether a payload is one well-formed JSON value.
func validJSON(b []byte) bool { return jsoniter.Valid(b) }
