package main

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// publishHandler turns one HTTP request into one Kafka record (the HTTP contract of
// the design). Server and client mode share it.
type publishHandler struct {
	pub        publisher
	retryAfter int
}

// serve answers r for route rc.
func (h *publishHandler) serve(w http.ResponseWriter, r *http.Request, rc *routeConfig) {
	topic, err := topicFor(rc, r.URL.Path)
	if err != nil {
		h.fail(w, http.StatusNotFound, err.Error())
		return
	}
	if r.Method != http.MethodPost {
		h.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; use POST", r.Method))
		return
	}
	if msg, ok := jsonContentType(r.Header.Get("Content-Type")); !ok {
		h.fail(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	if r.ContentLength > rc.MaxBodyBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, tooLarge(rc.MaxBodyBytes))
		return
	}
	var body []byte
	if r.Body != nil {
		buf, err := readBody(r.Body, rc.MaxBodyBytes)
		defer releaseBody(buf) // after the publish call: the core has copied what it keeps
		if err != nil {
			h.fail(w, http.StatusBadRequest, "cannot read the request body: "+err.Error())
			return
		}
		body = *buf
	}
	if int64(len(body)) > rc.MaxBodyBytes {
		h.fail(w, http.StatusRequestEntityTooLarge, tooLarge(rc.MaxBodyBytes))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		h.fail(w, http.StatusBadRequest, "the request body is empty; send a JSON object")
		return
	}
	headersJSON, err := parseMessageHeaders(r.Header.Values(headerHeaders))
	if err != nil {
		h.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	key, _ := messageKey(r.Header)

	status, d, msg := h.pub.publish(r.Context(), topic, body, headersJSON, key)
	httpCode, known := httpStatus(status)
	if !known {
		msg = fmt.Sprintf("the core answered an unknown status %d: %s", status, msg)
	}
	if httpCode == http.StatusOK {
		writeOK(w, topic, d)
		return
	}
	if httpCode >= 500 {
		logError("publish to", topic, "failed:", httpCode, msg)
	} else {
		logDebug("publish to", topic, "rejected:", httpCode, msg)
	}
	h.fail(w, httpCode, msg)
}

func (h *publishHandler) fail(w http.ResponseWriter, status int, msg string) {
	writeError(w, status, msg, h.retryAfter)
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)
}

// jsonContentType accepts application/json with optional parameters; charset, if
// given, must be UTF-8.
func jsonContentType(ct string) (string, bool) {
	if ct == "" {
		return "missing Content-Type; send application/json", false
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Sprintf("Content-Type %q is not supported; send application/json", ct), false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fmt.Sprintf("charset %q is not supported; send UTF-8 JSON", cs), false
	}
	return "", true
}
