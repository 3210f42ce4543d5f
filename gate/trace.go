package gate

import (
	"bytes"
	"context"
	"errors"
	"log/slog"

	jsoniter "github.com/json-iterator/go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/mqantgen/mqantgen/core"
)

// reqTrace is one request's trace at the gate: its context, and its
// receive span when the application installed a tracer provider.
type reqTrace struct {
	tc   core.TraceContext
	span trace.Span // nil: tracing off
}

// traceparentKey is what a client puts at the top level of its JSON
// request to continue its own trace: {"traceparent":"00-<32 hex>-<16
// hex>-<2 hex>", ...}. MQTT 3.1.1 has no user properties to carry it.
var traceparentKey = []byte(`"traceparent"`)

// receiveTrace gives a request its trace: the client's when its payload
// carries a valid traceparent, else a new one; with a tracer, the gate's
// receive span starts here (a child of the client's context), so it covers
// the time the request waits behind the connection's earlier calls. A
// payload without the key costs one byte search, no allocation.
func (c *conn) receiveTrace(payload []byte) reqTrace {
	var rt reqTrace
	client, ok := core.TraceContext{}, false
	if bytes.Contains(payload, traceparentKey) {
		s := topLevelString(payload, "traceparent")
		if client, ok = core.ParseTraceparent(s); !ok {
			c.g.log.Debug("ignoring an invalid traceparent; the request gets a new trace", "remote", c.remote,
				"traceparent", clip(s))
		}
	}
	tr := c.g.App.Tracer()
	if tr == nil {
		if ok {
			rt.tc = client
		} else {
			rt.tc = core.NewTraceContext()
		}
		return rt
	}
	ctx := c.g.ctx
	if ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, client.SpanContext())
	}
	_, rt.span = tr.Start(ctx, "gate.receive", trace.WithSpanKind(trace.SpanKindServer))
	sc := rt.span.SpanContext()
	rt.tc = core.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}
	return rt
}

// topLevelString returns the string value of key in a JSON object, "" when
// the payload is no object or key is no string at its top level.
func topLevelString(payload []byte, key string) string {
	it := jsoniter.ConfigFastest.BorrowIterator(payload)
	defer jsoniter.ConfigFastest.ReturnIterator(it)
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return ""
	}
	var v string
	it.ReadObjectCB(func(it *jsoniter.Iterator, k string) bool {
		if k == key && v == "" && it.WhatIsNext() == jsoniter.StringValue {
			v = it.ReadString()
		} else {
			it.Skip()
		}
		return it.Error == nil
	})
	return v
}

// id is the trace id for log lines.
func (rt *reqTrace) id() string { return rt.tc.TraceIDString() }

// ctx is the parent context of the request's call: the gate's, with the
// receive span when there is one.
func (rt *reqTrace) ctx(parent context.Context) context.Context {
	if rt.span == nil {
		return parent
	}
	return trace.ContextWithSpan(parent, rt.span)
}

// refused ends the receive span of a request the gate refused itself.
func (rt *reqTrace) refused(why string) {
	if rt.span != nil {
		rt.span.SetStatus(codes.Error, why)
		rt.span.End()
	}
}

// end ends the receive span with the outcome of the request's call.
func (rt *reqTrace) end(typ, fn string, err error) {
	if rt.span != nil {
		core.EndSpan(rt.span, typ, fn, err)
	}
}

// logFailure logs a failed call with its trace id: timeouts and panics
// (the operator's business) as rate-limited warnings, as are transport
// failures of no-reply requests (clientError warns of the others); the
// handler's own errors and refusals (the client's business) at debug level.
func (c *conn) logFailure(cl call, err error) {
	switch {
	case errors.Is(err, core.ErrTimeout), errors.Is(err, core.ErrRemotePanic),
		cl.msgid == "" && errors.Is(err, core.ErrTransport):
		c.warn("request failed", "module", cl.typ, "fn", clip(cl.fn), "err", err, "trace_id", cl.rt.id())
	case c.g.log.Enabled(context.Background(), slog.LevelDebug):
		c.g.log.Debug("request failed", "remote", c.remote, "topic", clip(cl.topic), "err", err, "trace_id", cl.rt.id())
	}
}
