// Package request reads what a publish request gives its records: the body (into pooled
// buffers), the message-key and message-headers headers, and the trace context.
package request

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// NDJSON is the media type of a batch: one record per line.
const NDJSON = "application/x-ndjson"

// Options are what every request style is given: the publisher and the mounting's settings.
type Options struct {
	Pub          core.Publisher
	RetryAfter   int  // Retry-After (seconds) of a 503
	TraceHeaders bool // copy the request's trace context into the record (WithTraceContext)
	Streams      bool // the mounting can stream an answer (the http-server one; KrakenD buffers a backend's)
	JSONKeys     bool // the core encodes keys with a key schema: an envelope's "key" is any JSON value, passed as its text
}

// Headers is the record headers (message-headers, plus the trace context unless off) and the key
// (message-key; nil for none) a request gives its records.
func (o *Options) Headers(r *http.Request) (headers []core.Header, key []byte, err error) {
	headers, err = parseMessageHeaders(r.Header.Values(headerHeaders))
	if err == nil && o.TraceHeaders {
		headers = WithTraceContext(r.Context(), headers, r.Header)
	}
	key, _ = messageKey(r.Header)
	return headers, key, err
}

// ContentType accepts application/json (one record) and application/x-ndjson (a batch: batch
// true), with optional parameters; charset, if given, must be UTF-8.
func ContentType(ct string) (batch bool, msg string, ok bool) {
	const want = "send application/json (or " + NDJSON + " for a batch)"
	if ct == "" {
		return false, "missing Content-Type; " + want, false
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != NDJSON) {
		return false, fmt.Sprintf("Content-Type %q is not supported; %s", ct, want), false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false, fmt.Sprintf("charset %q is not supported; send UTF-8 JSON", cs), false
	}
	return mt == NDJSON, "", true
}
