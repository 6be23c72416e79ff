// Package batch publishes an application/x-ndjson request, one record per line, as a whole:
// every line is checked before any is produced (README "Batches").
package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// batchLine is one non-blank line of a batch body and its 1-based line number.
type batchLine struct {
	n    int
	text []byte
}

// envelope is a line of a route with batch.envelope: the value with the record's own key and headers.
type envelope struct {
	Value   json.RawMessage  `json:"value"`
	Key     json.RawMessage  `json:"key"` // a string; with a key schema any JSON value (see Record)
	Headers *envelopeHeaders `json:"headers"`
}

// envelopeHeaders are an envelope's headers: a JSON object of strings, read in order with
// duplicate names kept (each entry is a record header).
type envelopeHeaders []core.Header

func (h *envelopeHeaders) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("json: cannot unmarshal headers: not an object of strings")
	}
	out := envelopeHeaders{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string) // an object's keys are strings
		var value string
		if err := dec.Decode(&value); err != nil {
			return err // json: cannot unmarshal … into … string
		}
		out = append(out, core.Header{Name: name, Value: []byte(value)})
	}
	*h = out
	return nil
}

// batchResult is one record's entry in a batch answer.
type batchResult struct {
	Line       int    `json:"line"`
	StatusCode string `json:"statusCode"`
	Message    string `json:"message,omitempty"`
	Partition  *int32 `json:"partition,omitempty"`
	Offset     *int64 `json:"offset,omitempty"`
}

// batchBody is the answer to a batch: one result per record, in order. A refused batch (an invalid
// record, nothing written) lists only the invalid records, under "errors".
type batchBody struct {
	StatusCode string        `json:"statusCode"`
	Message    string        `json:"message"`
	Topic      string        `json:"topic"`
	Records    []batchResult `json:"records,omitempty"`
	Errors     []batchResult `json:"errors,omitempty"`
}

// Serve answers an application/x-ndjson request on rc: every line is a record (see
// README "Batches"). fail answers a request-level error; m may be nil (metrics off).
func Serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route, topic string, m *metrics.Topic, fail func(int, string)) {
	bc := &rc.Batch
	if bc.MaxRecords == 0 {
		fail(http.StatusUnsupportedMediaType, "batches ("+request.NDJSON+") are off for this route; send application/json")
		return
	}
	body, buf, status, msg := request.Body(r, bc.MaxBodyBytes, TooLarge, m)
	defer request.Release(buf)
	if status != 0 {
		fail(status, msg)
		return
	}
	lines, status, msg := splitBatch(body, bc.MaxRecords)
	if status != 0 {
		fail(status, msg)
		return
	}
	// The request's message-key and message-headers (with its trace context) apply to every
	// record that has none of its own.
	headers, key, err := o.Headers(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}

	results := make([]core.Outcome, len(lines))
	records := make([]core.Record, 0, len(lines))
	index := make([]int, 0, len(lines)) // records[j] is lines[index[j]]
	for i, ln := range lines {
		rec, status, msg := Record(r, ln.text, bc, o, headers, key)
		if status != 0 {
			results[i] = core.Outcome{Status: status, Msg: msg}
			continue
		}
		rec.Headers = request.WithIdempotencyHeader(r, rec.Headers, ln.n)
		records = append(records, rec)
		index = append(index, i)
	}
	valid := len(records) == len(lines)
	if len(records) > 0 && (valid || bc.Partial) {
		outs, checked := o.Pub.PublishBatch(r.Context(), topic, records, core.BatchMode{Partial: bc.Partial, Atomic: bc.Atomic})
		valid = valid && checked
		for j, o := range outs {
			results[index[j]] = o
		}
	} // else each valid record keeps status 0: not written, another record is invalid
	m.BatchRecords(results)
	status, msg, b := batchAnswer(topic, lines, results, !valid && !bc.Partial)
	if status != http.StatusOK {
		logging.Access(status, topic, msg)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(o.RetryAfter))
	}
	respond.Body(w, status, b)
}

// Record makes line's record: its value, headers and key (its own with batch.envelope, else the
// request's; o.TraceHeaders adds r's trace context to its own headers). An envelope's key is a
// string, its text the key; with o.JSONKeys (the core encodes keys with a key schema) it is any
// JSON value, its JSON text the key. A status other than 0 refuses the line, msg says why.
func Record(r *http.Request, line []byte, bc *config.Batch, o *request.Options, headers []core.Header, key []byte) (core.Record, int, string) {
	if int64(len(line)) > bc.MaxLineBytes {
		return core.Record{}, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the line is %d bytes, larger than the limit of %d bytes (batch.max_line_bytes)", len(line), bc.MaxLineBytes)
	}
	if !bc.Envelope {
		return core.Record{Value: line, Headers: headers, Key: key, KeyLabel: request.KeyHeader}, 0, ""
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	err := dec.Decode(&env)
	if err == nil && dec.More() {
		err = errors.New("text after the envelope object")
	}
	if err != nil {
		return core.Record{}, http.StatusBadRequest, "envelope: " + err.Error() + ` (a line is {"value": {...}, "key": "...", "headers": {"name": "value"}})`
	}
	if len(env.Value) == 0 || bytes.Equal(env.Value, []byte("null")) {
		return core.Record{}, http.StatusBadRequest, "envelope: value: missing"
	}
	rec := core.Record{Value: env.Value, Headers: headers, Key: key, KeyLabel: request.KeyHeader}
	if len(env.Key) > 0 && !bytes.Equal(env.Key, []byte("null")) {
		own, err := envelopeKey(env.Key, o.JSONKeys)
		if err != nil {
			return core.Record{}, http.StatusBadRequest, "envelope: key: " + err.Error()
		}
		rec.Key, rec.KeyLabel = own, "" // the core's "key: …" then names the line's own "key"
	}
	if env.Headers != nil {
		own := []core.Header(*env.Headers)
		if o.TraceHeaders {
			own = request.WithTraceContext(r.Context(), own, r.Header)
		}
		rec.Headers = own
	}
	return rec, 0, ""
}

// envelopeKey is the key an envelope's "key" (not null) gives: a string's text, or with jsonKeys
// the value's JSON text as sent (the core checks it against the key schema).
func envelopeKey(raw json.RawMessage, jsonKeys bool) ([]byte, error) {
	if jsonKeys {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("must be a string (keys are plain text unless the core has a key_schema)")
	}
	return []byte(s), nil
}

// splitBatch cuts body into its non-blank lines ("\n" or "\r\n" ends a line). A status other
// than 0 refuses the request: no record, or more than maxRecords.
func splitBatch(body []byte, maxRecords int) ([]batchLine, int, string) {
	lines := make([]batchLine, 0, bytes.Count(body, []byte{'\n'})+1)
	for n := 1; len(body) > 0; n++ {
		text := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			text, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		text = bytes.TrimSuffix(text, []byte{'\r'})
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if len(lines) == maxRecords {
			return nil, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("the batch has more than %d records, the limit (batch.max_records)", maxRecords)
		}
		lines = append(lines, batchLine{n: n, text: text})
	}
	if len(lines) == 0 {
		return nil, http.StatusBadRequest, "the request body has no records; send one JSON object per line"
	}
	return lines, 0, ""
}

// batchAnswer is the HTTP status, message and body of a batch's results. A refused batch (invalid
// records, nothing written) answers the first invalid record's status and lists each invalid
// record. Otherwise 200 when all were written; when none was and all failed alike, that status;
// else 207 Multi-Status.
func batchAnswer(topic string, lines []batchLine, results []core.Outcome, refused bool) (int, string, []byte) {
	written, same, first := 0, true, -1
	for i, o := range results {
		switch {
		case o.Status == http.StatusOK:
			written++
		case o.Status != 0 && first < 0:
			first = i
		}
		same = same && o.Status == results[0].Status
	}
	if refused {
		return refusedAnswer(topic, lines, results, first)
	}
	status, msg := http.StatusMultiStatus, fmt.Sprintf("%d of %d records written", written, len(results))
	switch {
	case written == len(results):
		status, msg = http.StatusOK, "ok"
	case written == 0 && same:
		status, msg = results[0].Status, "no record acknowledged: "+results[0].Msg
	}
	// Appended, not json.Marshal'ed: a 100-record answer by reflection was ~3% of a batch's CPU.
	b := make([]byte, 0, 128+len(topic)+64*len(results))
	b = append(b, `{"statusCode":"`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `","message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"topic":"`...)
	b = append(b, topic...) // a checked topic name (config.CheckTopicName): nothing to escape
	b = append(b, `","records":[`...)
	for i, o := range results {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendResult(b, lines[i].n, o)
	}
	return status, msg, append(b, "]}"...)
}

// refusedAnswer is the answer to a batch refused for its invalid records (results[first] is the
// first): nothing was written; the body lists each invalid record.
func refusedAnswer(topic string, lines []batchLine, results []core.Outcome, first int) (int, string, []byte) {
	var errs []batchResult
	for i, o := range results {
		if o.Status != 0 && o.Status != http.StatusOK {
			errs = append(errs, batchResult{Line: lines[i].n, StatusCode: strconv.Itoa(o.Status), Message: lineMessage(lines[i].n, o.Msg)})
		}
	}
	status := results[first].Status
	msg := fmt.Sprintf("%s; the batch was refused, nothing written (%d of %d records invalid)", errs[0].Message, len(errs), len(results))
	b, _ := json.Marshal(batchBody{StatusCode: strconv.Itoa(status), Message: msg, Topic: topic, Errors: errs}) // plain fields: cannot fail
	return status, msg, b
}

// AppendResult appends a record's entry of a batch or stream answer, byte for byte what
// json.Marshal gives for its batchResult (a test checks it): {"line":n,"statusCode":"200",
// "partition":p,"offset":o}, or {"line":n,"statusCode":"<status>","message":"line n: ..."}.
func AppendResult(b []byte, line int, o core.Outcome) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	b = append(b, `,"statusCode":"`...)
	b = strconv.AppendInt(b, int64(o.Status), 10)
	if o.Status == http.StatusOK {
		b = append(b, `","partition":`...)
		b = strconv.AppendInt(b, int64(o.Delivery.Partition), 10)
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, o.Delivery.Offset, 10)
	} else {
		b = append(b, `","message":`...)
		b = appendJSONString(b, lineMessage(line, o.Msg))
	}
	return append(b, '}')
}

// lineMessage is the message of a record's failure: its line, then why.
func lineMessage(line int, msg string) string {
	return fmt.Sprintf("line %d: %s", line, msg)
}

// appendJSONString appends s as a JSON string, escaped as json.Marshal escapes it.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string: cannot fail
	return append(b, q...)
}

// TooLarge is the message of a batch body over batch.max_body_bytes (limit).
func TooLarge(limit int64) string {
	return fmt.Sprintf("the request body is larger than the batch limit of %d bytes (batch.max_body_bytes)", limit)
}
