package request

import (
	"context"
	"net/http"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"go.opentelemetry.io/otel/trace"
)

const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceparent(t *testing.T) {
	for _, ok := range []string{tp, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more"} {
		if !validTraceparent(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", tp + "-x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		if validTraceparent(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The traceparent check is OpenTelemetry's W3C propagator's (pinned with KrakenD), not a copy of it:
// the two agree, also where a hand-written check tends to differ (reserved flag bits of version 00,
// fields after a later version's flags).
func TestValidTraceparentAgreesWithThePropagator(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
	for _, c := range []struct {
		v  string
		ok bool
	}{
		{"00-" + id + "-01", true}, {"00-" + id + "-03", true}, {"00-" + id + "-04", false},
		{"00-" + id + "-ff", false}, {"cc-" + id + "-ff-x", true}, {"cc-" + id + "-09", true},
		{"00-" + id + "-0g", false}, {"0-" + id + "-01", false},
	} {
		if got := validTraceparent(c.v); got != c.ok {
			t.Errorf("%q: valid %v, want %v", c.v, got, c.ok)
		}
	}
}

func TestWithTraceContext(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", tp)
	h.Set("Tracestate", "congo=t61rcWkgMzE")
	h.Set("Baggage", "userId=alice")
	all := "traceparent=" + tp + ",tracestate=congo=t61rcWkgMzE,baggage=userId=alice"
	hs := func(kv ...string) []core.Header {
		var out []core.Header
		for i := 0; i < len(kv); i += 2 {
			out = append(out, core.Header{Name: kv[i], Value: []byte(kv[i+1])})
		}
		return out
	}
	cases := []struct {
		in   []core.Header
		want string
	}{
		{nil, all},
		// The client's own headers come first, as sent; a name the client set keeps the client's
		// value (duplicates included), and the trace context adds only the names it lacks.
		{hs("b", "1", "traceparent", "mine", "a", "2", "traceparent", "again"),
			"b=1,traceparent=mine,a=2,traceparent=again,tracestate=congo=t61rcWkgMzE,baggage=userId=alice"},
	}
	for _, c := range cases {
		in := headerText(c.in)
		got := WithTraceContext(context.Background(), c.in, h)
		if headerText(got) != c.want {
			t.Errorf("%s: got %s; want %s", in, headerText(got), c.want)
		}
		if headerText(c.in) != in {
			t.Errorf("the caller's headers changed: %s", headerText(c.in))
		}
	}
	// An invalid traceparent drops it and its tracestate; baggage stays.
	h.Set("Traceparent", "garbage")
	if got := WithTraceContext(context.Background(), nil, h); headerText(got) != "baggage=userId=alice" {
		t.Errorf("invalid traceparent: %s", headerText(got))
	}
	// No trace headers: the headers are untouched.
	if got := WithTraceContext(context.Background(), hs("a", "1"), http.Header{}); headerText(got) != "a=1" {
		t.Errorf("untouched: %s", headerText(got))
	}
	// A batch shares the request's headers between records: adding never writes into them.
	shared := make([]core.Header, 1, 8)
	shared[0] = core.Header{Name: "a", Value: []byte("1")}
	h.Set("Traceparent", tp)
	one := WithTraceContext(context.Background(), shared, h)
	if len(one) != 4 || len(shared[:cap(shared)][1].Name) != 0 {
		t.Errorf("shared headers written into: %s", headerText(shared[:cap(shared)]))
	}
}

// With a span in the context (KrakenD's OpenTelemetry, client mounting) the span is the trace
// context, whatever the client sent; baggage still comes from the request.
func TestWithTraceContextPrefersTheGatewaysSpan(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", tp)
	h.Set("Baggage", "userId=alice")
	ts, _ := trace.ParseTraceState("krakend=1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
		TraceState: ts,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	got := WithTraceContext(ctx, nil, h)
	want := "traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01,tracestate=krakend=1,baggage=userId=alice"
	if headerText(got) != want {
		t.Errorf("got %s; want %s", headerText(got), want)
	}
}
