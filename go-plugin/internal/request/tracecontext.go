package request

import (
	"context"
	"encoding/json"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traceHeaders are the W3C Trace Context and Baggage request headers a record carries, so that a
// consumer continues the request's trace. Record header names are these, lower case.
var traceHeaders = [...]string{"traceparent", "tracestate", "baggage"}

// WithTraceContext adds the request's trace context to headersJSON (the record headers from
// message-headers, a JSON object, or nil). The trace context is KrakenD's own span when ctx carries
// one (its OpenTelemetry is on and the plugin runs as a backend, inside KrakenD's span), else the
// client's traceparent and tracestate headers; baggage always comes from the request. A name the
// client also set in message-headers keeps the client's value: what a client writes explicitly wins
// over what is copied. A client traceparent that is not a valid W3C traceparent is left out, and
// its tracestate with it (as W3C says to ignore both).
func WithTraceContext(ctx context.Context, headersJSON []byte, h http.Header) ([]byte, error) {
	found := make(map[string]string, len(traceHeaders))
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		found["traceparent"] = formatTraceparent(sc)
		if ts := sc.TraceState().String(); ts != "" {
			found["tracestate"] = ts
		}
	} else if tp := h.Get("traceparent"); validTraceparent(tp) {
		found["traceparent"] = tp
		if ts := h.Get("tracestate"); ts != "" {
			found["tracestate"] = ts
		}
	}
	if b := h.Get("baggage"); b != "" {
		found["baggage"] = b
	}
	if len(found) == 0 {
		return headersJSON, nil
	}
	if headersJSON != nil {
		if err := json.Unmarshal(headersJSON, &found); err != nil { // explicit entries overwrite
			return nil, err
		}
	}
	return json.Marshal(found)
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
