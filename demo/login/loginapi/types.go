// Package loginapi holds the messages of the Login module, so generated code
// and other modules can use them without importing the module itself.
package loginapi

// LoginRequest is the body of Login/Handler_Login.
type LoginRequest struct {
	UserName string `json:"userName"`
	PassWord string `json:"passWord"`
}

// User is what Login knows of a logged-in user.
type User struct {
	Name      string `json:"name"`
	SessionID string `json:"sessionId"`
	Gate      string `json:"gate"`
	Logins    int    `json:"logins"` // how many times this name has logged in
}
