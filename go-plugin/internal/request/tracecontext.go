package request

import (
	"context"
	"net/http"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceHeaders are the W3C Trace Context and Baggage request headers a record carries, so that a
// consumer continues the request's trace. Record header names are these, lower case.
var traceHeaders = [...]string{"traceparent", "tracestate", "baggage"}

// WithTraceContext is headers (the record headers from message-headers, or nil) with the request's
// trace context after them. The trace context is KrakenD's own span when ctx carries one (its
// OpenTelemetry is on and the plugin runs as a backend, inside KrakenD's span), else the client's
// traceparent and tracestate headers; baggage always comes from the request. A name the client
// also set in headers keeps the client's value (and only it): what a client writes explicitly
// wins over what is copied. A client traceparent that is not a valid W3C traceparent is left out,
// and its tracestate with it (as W3C says to ignore both). headers is not modified: a record that
// gets a trace context gets a new slice.
func WithTraceContext(ctx context.Context, headers []core.Header, h http.Header) []core.Header {
	var found [len(traceHeaders)]string // by index in traceHeaders; "" for none
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		found[0] = formatTraceparent(sc)
		found[1] = sc.TraceState().String()
	} else if tp := h.Get("traceparent"); validTraceparent(tp) {
		found[0] = tp
		found[1] = h.Get("tracestate")
	}
	found[2] = h.Get("baggage")
	var out []core.Header
	for i, v := range found {
		if v == "" || hasHeader(headers, traceHeaders[i]) {
			continue
		}
		if out == nil {
			out = make([]core.Header, len(headers), len(headers)+len(traceHeaders)-i)
			copy(out, headers)
		}
		out = append(out, core.Header{Name: traceHeaders[i], Value: []byte(v)})
	}
	if out == nil {
		return headers
	}
	return out
}

// hasHeader reports whether headers hold one named name.
func hasHeader(headers []core.Header, name string) bool {
	for _, h := range headers {
		if h.Name == name {
			return true
		}
	}
	return false
}

// formatTraceparent is the W3C traceparent (version 00) of a span.
func formatTraceparent(sc trace.SpanContext) string {
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// validTraceparent reports whether v is a W3C traceparent, as OpenTelemetry's TraceContext
// propagator reads one: 2 hex version digits (not ff), a 32-digit trace id and a 16-digit parent id
// that are not all zeros, 2 hex flag digits (version 00: no reserved bits, nothing after them),
// lower-case hex, separated by '-'; versions above 00 may append fields after a further '-'.
func validTraceparent(v string) bool {
	if v == "" {
		return false
	}
	carrier := propagation.MapCarrier{"traceparent": v}
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier)
	return trace.SpanContextFromContext(ctx).IsValid()
}
