package core

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"math/rand/v2"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TraceContext is a request's W3C trace context (the fields of a
// `traceparent` header, version 00): every request gets one at the gate,
// and it travels with the request's calls, in-process in the context and
// in Request.Trace, across processes in the RPC envelope. It is 25 bytes
// kept as bytes: the hex text is made only when a log line or an exporter
// needs it, so a request that nobody logs or traces costs no string.
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte // the caller's span: the parent of the callee's
	Flags   byte    // bit 0: sampled
}

// Valid reports whether both ids are set (W3C: all-zero ids are invalid).
func (t TraceContext) Valid() bool { return t.TraceID != [16]byte{} && t.SpanID != [8]byte{} }

// TraceIDString is the trace id as 32 lowercase hex digits, the value of
// the `trace_id` key in log lines; "" for an invalid context.
func (t TraceContext) TraceIDString() string {
	if !t.Valid() {
		return ""
	}
	return hex.EncodeToString(t.TraceID[:])
}

// String is the context as a `traceparent` value: 00-traceid-spanid-flags.
func (t TraceContext) String() string {
	b := make([]byte, 0, traceparentLen)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, t.TraceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, t.SpanID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, []byte{t.Flags})
	return string(b)
}

const traceparentLen = 55 // 2+1+32+1+16+1+2

// ParseTraceparent parses a W3C `traceparent` value. It accepts what the
// Trace Context recommendation says a receiver must: lowercase hex, ids
// not all zero, version not ff, and for versions above 00 more fields
// after a dash (ignored). ok is false for anything else.
func ParseTraceparent(s string) (t TraceContext, ok bool) {
	if len(s) < traceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return t, false
	}
	var ver [1]byte
	if !lowerHex(ver[:], s[0:2]) || ver[0] == 0xff {
		return t, false
	}
	if len(s) > traceparentLen && (ver[0] == 0 || s[traceparentLen] != '-') {
		return t, false
	}
	var flags [1]byte
	if !lowerHex(t.TraceID[:], s[3:35]) || !lowerHex(t.SpanID[:], s[36:52]) || !lowerHex(flags[:], s[53:55]) {
		return TraceContext{}, false
	}
	t.Flags = flags[0]
	if !t.Valid() {
		return TraceContext{}, false
	}
	return t, true
}

// lowerHex decodes src (lowercase hex only, as W3C requires) into dst.
func lowerHex(dst []byte, src string) bool {
	for i := range dst {
		hi, ok1 := hexVal(src[2*i])
		lo, ok2 := hexVal(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// NewTraceContext returns a new trace: random ids, not sampled (nothing
// records it in a process without a tracer provider). The ids are for
// telling requests apart, not secrets, so the runtime's fast per-thread
// generator is enough: no lock, no allocation. The trace id takes two
// draws; the span id, which only has to differ from the other spans of
// the same trace, is the trace id's bits mixed (a third draw was a third
// of the cost, and every client request pays it).
func NewTraceContext() TraceContext {
	var t TraceContext
	for {
		hi, lo := rand.Uint64(), rand.Uint64()
		if hi|lo == 0 {
			continue
		}
		binary.BigEndian.PutUint64(t.TraceID[:8], hi)
		binary.BigEndian.PutUint64(t.TraceID[8:], lo)
		span := mix64(hi ^ bits.RotateLeft64(lo, 29))
		if span == 0 {
			continue
		}
		binary.BigEndian.PutUint64(t.SpanID[:], span)
		return t
	}
}

// mix64 is splitmix64's finaliser: a bijection, so distinct inputs give
// distinct span ids.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// TraceFromContext returns the trace context a handler's ctx carries: the
// current OpenTelemetry span's when there is one (so a span the
// application started itself is the parent of the calls it makes), else
// the one the runtime put there. The zero value when there is none.
func TraceFromContext(ctx context.Context) TraceContext {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return fromSpanContext(sc)
	}
	if p, ok := ctx.Value(traceKey{}).(*TraceContext); ok {
		return *p
	}
	return TraceContext{}
}

// ContextWithTrace returns ctx carrying t, for calls made outside a
// handler that must continue a known trace.
func ContextWithTrace(ctx context.Context, t TraceContext) context.Context {
	return &traceCtx{Context: ctx, t: t}
}

type traceKey struct{}

type traceCtx struct {
	context.Context
	t TraceContext
}

func (c *traceCtx) Value(key any) any {
	if key == (traceKey{}) {
		return &c.t
	}
	return c.Context.Value(key)
}

func fromSpanContext(sc trace.SpanContext) TraceContext {
	return TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
}

// SpanContext is t as OpenTelemetry's remote span context.
func (t TraceContext) SpanContext() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: t.TraceID, SpanID: t.SpanID,
		TraceFlags: trace.TraceFlags(t.Flags), Remote: true})
}

// Span attribute keys. Values are bounded: module types and handler names
// the deployment registered, instance ids of its configuration, error
// kinds. Never a user id, a session id or a topic.
const (
	AttrModule    = attribute.Key("mqant.module")
	AttrHandler   = attribute.Key("mqant.handler")
	AttrInstance  = attribute.Key("mqant.instance")
	AttrErrorKind = attribute.Key("error.type")
)

// Tracer returns the tracer of the provider given in Options.TracerProvider,
// nil when tracing is off. The gate starts its receive spans with it.
func (a *App) Tracer() trace.Tracer { return a.tracer }

// tracerName names the instrumentation scope of every span the framework makes.
const tracerName = "github.com/mqantgen/mqantgen"

// withParent returns ctx whose current span is t: ctx itself when its
// OpenTelemetry span is t (in-process, the caller's span), else t as a
// remote parent (it came from another process, or from a request's
// fields). A context that carries t without a span (core.ServeContext,
// ContextWithTrace) gets the remote parent: the tracer starts spans from
// spans only.
func withParent(ctx context.Context, t TraceContext) context.Context {
	if !t.Valid() {
		return ctx
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && fromSpanContext(sc) == t {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, t.SpanContext())
}

// EndSpan ends a span of a call to module.fn with the call's outcome. The
// handler name is recorded only when the handler exists (a client can send
// any name: unknown ones would make the attribute unbounded).
func EndSpan(span trace.Span, module, fn string, err error) {
	if module != "" {
		span.SetAttributes(AttrModule.String(module))
	}
	if code := ErrorCode(err); code != codeNotFound {
		span.SetAttributes(AttrHandler.String(fn))
	}
	if err != nil {
		kind := kinds[ErrorCode(err)].Error()
		span.SetAttributes(AttrErrorKind.String(kind))
		span.SetStatus(codes.Error, kind)
	}
	span.End()
}
