package main

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// publishHandler turns one HTTP request into one Kafka record (the HTTP contract of
// the design), or a batch request into many (serveBatch). Server and client mode share it.
type publishHandler struct {
	pub          publisher
	retryAfter   int
	traceHeaders bool // copy the request's trace context into the record (withTraceContext)
	streams      bool // the mounting can stream an answer (the http-server one; KrakenD buffers a backend's)
}

// serve answers r for route rc.
func (h *publishHandler) serve(w http.ResponseWriter, r *http.Request, rc *routeConfig) {
	started := time.Now()
	topic, err := topicFor(rc, r.URL.Path)
	m := metricsFor(topic) // "" when no route allows the topic: such requests share one series; nil when off
	if m != nil {
		sw := &statusWriter{ResponseWriter: w}
		w = sw
		defer func() { m.answered(sw.status, started) }()
	}
	fail := func(status int, msg string) {
		logOutcome(status, topic, msg)
		h.fail(w, status, msg)
	}
	if err != nil {
		fail(http.StatusNotFound, err.Error())
		return
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; use POST", r.Method))
		return
	}
	batch, msg, ok := requestType(r.Header.Get("Content-Type"))
	if !ok {
		fail(http.StatusUnsupportedMediaType, msg)
		return
	}
	if batch && wantsStream(r) {
		h.serveStream(w, r, rc, topic, m, fail)
		return
	}
	if batch {
		h.serveBatch(w, r, rc, topic, m, fail)
		return
	}
	body, buf, status, msg := requestBody(r, rc.MaxBodyBytes, tooLarge, m)
	defer releaseBody(buf) // after the publish call: the core has copied what it keeps
	if status != 0 {
		fail(status, msg)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		fail(http.StatusBadRequest, "the request body is empty; send a JSON object")
		return
	}
	headersJSON, key, err := h.requestHeaders(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}

	status, d, msg := h.pub.publish(r.Context(), topic, body, headersJSON, key)
	httpCode, msg := coreStatus(status, msg)
	if httpCode == http.StatusOK {
		m.acked(d)
		writeOK(w, topic, d)
		return
	}
	fail(httpCode, msg)
}

// requestHeaders is the record headers (message-headers, plus the trace context unless off) and
// the key (message-key; nil for none) a request gives its records.
func (h *publishHandler) requestHeaders(r *http.Request) (headersJSON, key []byte, err error) {
	headersJSON, err = parseMessageHeaders(r.Header.Values(headerHeaders))
	if err == nil && h.traceHeaders {
		headersJSON, err = withTraceContext(r.Context(), headersJSON, r.Header)
	}
	key, _ = messageKey(r.Header)
	return headersJSON, key, err
}

func (h *publishHandler) fail(w http.ResponseWriter, status int, msg string) {
	writeError(w, status, msg, h.retryAfter)
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)
}

// requestType accepts application/json (one record) and application/x-ndjson (a batch: batch
// true), with optional parameters; charset, if given, must be UTF-8.
func requestType(ct string) (batch bool, msg string, ok bool) {
	const want = "send application/json (or " + ndjsonType + " for a batch)"
	if ct == "" {
		return false, "missing Content-Type; " + want, false
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/json" && mt != ndjsonType) {
		return false, fmt.Sprintf("Content-Type %q is not supported; %s", ct, want), false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return false, fmt.Sprintf("charset %q is not supported; send UTF-8 JSON", cs), false
	}
	return mt == ndjsonType, "", true
}

// statusWriter remembers the status a handler answered with, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap gives http.ResponseController the server's writer (flushes, deadlines, full duplex).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
