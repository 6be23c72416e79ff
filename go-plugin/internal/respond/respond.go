// Package respond writes the plugin's JSON answers and maps the core's statuses to HTTP ones.
package respond

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
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

// OK answers 200 {"statusCode":"200","message":"ok","topic":...,"partition":...,"offset":...}.
func OK(w http.ResponseWriter, topic string, d core.Delivery) {
	var buf [160 + config.MaxTopicLen]byte
	Body(w, http.StatusOK, appendOK(buf[:0], topic, d))
}

// appendOK appends the okBody of a delivery, byte for byte what json.Marshal gives (a test
// checks it), without reflection: this answer is on every request's path. topic is a checked
// Kafka topic name ([a-zA-Z0-9._-], see config.CheckTopicName) and the messages are constants,
// so no character needs escaping.
func appendOK(b []byte, topic string, d core.Delivery) []byte {
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

// Error answers status with {"statusCode":"<status>","message":msg}. A 503 carries
// Retry-After (seconds); a 405 carries Allow: POST.
func Error(w http.ResponseWriter, status int, msg string, retryAfter int) {
	switch status {
	case http.StatusServiceUnavailable:
		if retryAfter < 1 {
			retryAfter = config.DefaultRetryAfterSeconds
		}
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	JSON(w, status, errorBody{StatusCode: strconv.Itoa(status), Message: msg})
}

// JSON answers status with body encoded as JSON.
func JSON(w http.ResponseWriter, status int, body interface{}) {
	b, err := json.Marshal(body)
	if err != nil { // cannot happen with the plugin's body types
		status = http.StatusInternalServerError
		b = []byte(`{"statusCode":"500","message":"cannot encode the response"}`)
	}
	Body(w, status, b)
}

// Body answers status with the JSON document b.
func Body(w http.ResponseWriter, status int, b []byte) {
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
	case 200, 400, 403, 404, 413, 500, 503, 504:
		return core, true
	default:
		return http.StatusInternalServerError, false
	}
}

// CoreStatus maps a core status to its HTTP status, explaining an unknown one.
func CoreStatus(st int, msg string) (int, string) {
	status, known := httpStatus(st)
	if !known {
		msg = fmt.Sprintf("the core answered an unknown status %d: %s", st, msg)
	}
	return status, msg
}

// StatusWriter remembers the status a handler answered with, for the metrics.
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

// WriteHeader records status and passes it on.
func (w *StatusWriter) WriteHeader(status int) {
	w.Status = status
	w.ResponseWriter.WriteHeader(status)
}

// Unwrap gives http.ResponseController the server's writer (flushes, deadlines, full duplex).
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
