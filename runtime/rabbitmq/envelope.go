package rabbitmq

import (
	"github.com/mqantgen/mqantgen/runtime"
)

// envelopeVersion is the version of the call and reply envelopes. A
// receiver refuses versions it does not know.
const envelopeVersion = 1

// callEnvelope is one call on the wire.
type callEnvelope struct {
	V       int                  `json:"v"`
	Fn      string               `json:"fn"`
	Session *runtime.SessionData `json:"s,omitempty"`
	Arg     runtime.RawMessage   `json:"a,omitempty"` // the encoded argument(s)
	NoReply bool                 `json:"nr,omitempty"`
	// TimeoutMs is the time the caller had left when it sent the call.
	TimeoutMs int64 `json:"t,omitempty"`
}

// replyEnvelope is one reply on the wire.
type replyEnvelope struct {
	V      int                `json:"v"`
	Code   int                `json:"c,omitempty"` // runtime.ErrorCode of the error, 0 on success
	Msg    string             `json:"m,omitempty"`
	Result runtime.RawMessage `json:"r,omitempty"`
}

// encodeArg returns the wire form of a request's argument: the raw bytes
// when it came encoded, the JSON of the typed value otherwise (a []any of
// positional arguments becomes a JSON array).
func encodeArg(req *runtime.Request) ([]byte, error) {
	if req.Arg == nil {
		return req.Raw, nil
	}
	return runtime.JSON.Marshal(req.Arg)
}

func encodeReply(rep runtime.Reply) []byte {
	env := replyEnvelope{V: envelopeVersion}
	if rep.Err != nil {
		env.Code, env.Msg = runtime.ErrorCode(rep.Err), rep.Err.Error()
	} else if rep.Raw != nil {
		env.Result = rep.Raw
	} else {
		b, err := runtime.JSON.Marshal(rep.Result)
		if err != nil {
			env.Code, env.Msg = runtime.ErrorCode(runtime.ErrRemote), "result cannot be encoded as JSON: "+err.Error()
		} else {
			env.Result = b
		}
	}
	b, err := runtime.JSON.Marshal(&env)
	if err != nil { // a string and raw JSON always encode
		panic(err)
	}
	return b
}

func decodeReply(body []byte) runtime.Reply {
	var env replyEnvelope
	if err := runtime.JSON.Unmarshal(body, &env); err != nil {
		return runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "rabbitmq: bad reply: %v", err)}
	}
	if env.V != envelopeVersion {
		return runtime.Reply{Err: runtime.Errorf(runtime.ErrTransport, "rabbitmq: reply envelope version %d, want %d", env.V, envelopeVersion)}
	}
	if env.Code != 0 {
		return runtime.Reply{Err: runtime.ErrorFromCode(env.Code, env.Msg)}
	}
	raw := env.Result
	if raw == nil {
		raw = runtime.RawMessage("null")
	}
	return runtime.Reply{Raw: raw}
}
