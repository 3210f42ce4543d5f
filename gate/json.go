package gate

import "encoding/json"

// validJSON reports whether a payload is one well-formed JSON value.
// encoding/json's scanner is used because json-iterator's Valid refuses a
// bare top-level number such as 1.
func validJSON(b []byte) bool { return json.Valid(b) }
