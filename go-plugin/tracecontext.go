package main

import (
	"encoding/json"
	"net/http"
)

// traceHeaders are the W3C Trace Context and Baggage request headers a record carries, so that a
// consumer continues the request's trace. Record header names are these, lower case.
var traceHeaders = [...]string{"traceparent", "tracestate", "baggage"}

// withTraceContext adds the request's trace headers to headersJSON (the record headers from
// message-headers, a JSON object, or nil). A name the client also set in message-headers keeps the
// client's value: what a client writes explicitly wins over what is copied. A traceparent that is
// not a valid W3C traceparent is left out, and its tracestate with it (as W3C says to ignore both).
func withTraceContext(headersJSON []byte, h http.Header) ([]byte, error) {
	var found map[string]string
	traced := validTraceparent(h.Get("traceparent"))
	for _, name := range traceHeaders {
		v := h.Get(name)
		if v == "" || (name != "baggage" && !traced) {
			continue
		}
		if found == nil {
			found = make(map[string]string, len(traceHeaders))
		}
		found[name] = v
	}
	if found == nil {
		return headersJSON, nil
	}
	merged := found
	if headersJSON != nil {
		if err := json.Unmarshal(headersJSON, &merged); err != nil { // explicit entries overwrite
			return nil, err
		}
	}
	return json.Marshal(merged)
}

// validTraceparent checks the W3C traceparent form: 2 hex version digits (not ff), a 32-digit
// trace id and a 16-digit parent id that are not all zeros, 2 hex flag digits, separated by '-';
// versions above 00 may append fields after a further '-'.
func validTraceparent(v string) bool {
	if len(v) < 55 || (len(v) > 55 && (v[:2] == "00" || v[55] != '-')) {
		return false
	}
	if v[2] != '-' || v[35] != '-' || v[52] != '-' || v[:2] == "ff" {
		return false
	}
	for _, part := range []string{v[:2], v[3:35], v[36:52], v[53:55]} {
		for i := 0; i < len(part); i++ {
			if c := part[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return v[3:35] != "00000000000000000000000000000000" && v[36:52] != "0000000000000000"
}
