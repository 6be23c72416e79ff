package main

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// okBody is the answer to a published record.
type okBody struct {
	StatusCode string `json:"statusCode"`
	Message    string `json:"message"`
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
}

// errorBody is the answer to anything else; statusCode equals the HTTP status.
type errorBody struct {
	StatusCode string `json:"statusCode"`
	Message    string `json:"message"`
}

// dryRunMessage is the message of a 200 from a core in dry-run mode, which answers
// partition -1: the body was valid and nothing was written.
const dryRunMessage = "valid; not published (dry_run)"

// writeOK answers 200 {"statusCode":"200","message":"ok","topic":...,"partition":...,"offset":...}.
func writeOK(w http.ResponseWriter, topic string, d delivery) {
	var buf [160 + maxTopicLen]byte
	writeBody(w, http.StatusOK, appendOK(buf[:0], topic, d))
}

// appendOK appends the okBody of a delivery, byte for byte what json.Marshal gives (a test
// checks it), without reflection: this answer is on every request's path. topic is a checked
// Kafka topic name ([a-zA-Z0-9._-], see checkTopicName) and the messages are constants, so no
// character needs escaping.
func appendOK(b []byte, topic string, d delivery) []byte {
	msg := "ok"
	if d.Partition < 0 {
		msg = dryRunMessage
	}
	b = append(b, `{"statusCode":"200","message":"`...)
	b = append(b, msg...)
	b = append(b, `","topic":"`...)
	b = append(b, topic...)
	b = append(b, `","partition":`...)
	b = strconv.AppendInt(b, int64(d.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, d.Offset, 10)
	return append(b, '}')
}

// writeError answers status with {"statusCode":"<status>","message":msg}. A 503 carries
// Retry-After (seconds); a 405 carries Allow: POST.
func writeError(w http.ResponseWriter, status int, msg string, retryAfter int) {
	switch status {
	case http.StatusServiceUnavailable:
		if retryAfter < 1 {
			retryAfter = defaultRetryAfterSeconds
		}
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	writeJSON(w, status, errorBody{StatusCode: strconv.Itoa(status), Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, body interface{}) {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the body types above
		status = http.StatusInternalServerError
		b = []byte(`{"statusCode":"500","message":"cannot encode the response"}`)
	}
	writeBody(w, status, b)
}

// writeBody answers status with the JSON document b.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// httpStatus maps a core status to the HTTP status: 1:1 for the statuses the ABI
// defines, 500 for anything else (ok false).
func httpStatus(core int) (status int, ok bool) {
	switch core {
	case 200, 400, 404, 413, 500, 503, 504:
		return core, true
	default:
		return http.StatusInternalServerError, false
	}
}
