package main

import (
	"net/http"
	"testing"
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

func TestWithTraceContext(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", tp)
	h.Set("Tracestate", "congo=t61rcWkgMzE")
	h.Set("Baggage", "userId=alice")
	cases := []struct{ in, want string }{
		{"", `{"baggage":"userId=alice","traceparent":"` + tp + `","tracestate":"congo=t61rcWkgMzE"}`},
		// The client's own entry of the same name wins.
		{`{"a":"1","traceparent":"mine"}`, `{"a":"1","baggage":"userId=alice","traceparent":"mine","tracestate":"congo=t61rcWkgMzE"}`},
	}
	for _, c := range cases {
		var in []byte
		if c.in != "" {
			in = []byte(c.in)
		}
		got, err := withTraceContext(in, h)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: got %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	// An invalid traceparent drops it and its tracestate; baggage stays.
	h.Set("Traceparent", "garbage")
	if got, _ := withTraceContext(nil, h); string(got) != `{"baggage":"userId=alice"}` {
		t.Errorf("invalid traceparent: %s", got)
	}
	// No trace headers: the headers are untouched.
	if got, _ := withTraceContext([]byte(`{"a":"1"}`), http.Header{}); string(got) != `{"a":"1"}` {
		t.Errorf("untouched: %s", got)
	}
}
