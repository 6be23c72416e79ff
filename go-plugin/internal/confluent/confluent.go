// Package confluent serves Confluent REST Proxy's v3 produce API on a route with "api":
// "confluent-v3": single records, records:batch, and Confluent's streaming mode.
package confluent

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/batch"
	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// Confluent REST Proxy v3 produce API on a route with "api": "confluent-v3" (README "Confluent
// REST Proxy v3"): POST <prefix>clusters/{cluster_id}/topics/{topic_name}/records (one record, or
// several concatenated JSON records as Confluent's streaming mode sends them) and …/records:batch.
// Every value is encoded with the topic's schema, as on the classic route, or with the registry
// schema its schema_id, subject, subject_name_strategy or schema_version selects.

// Confluent's error codes (kafka-rest's Errors and KafkaExceptionMapper).
const (
	v3BadRequest        = 400
	v3Forbidden         = 40301 // Kafka refused the write (authorization)
	v3TopicNotFound     = 40401
	v3PartitionNotFound = 40402
	v3TooLarge          = 413
	v3Unsupported       = 415
	v3SerializationErr  = 42207
	v3BatchErr          = 42208
	v3KafkaError        = 50002
	v3KafkaRetriable    = 50003
	v3BrokerUnavailable = 50302
	v3Unavailable       = 503 // the gateway itself cannot take the request now (not the broker)
)

// v3Data is a key or value of a produce request; the schema-selecting fields apply to values only.
type v3Data struct {
	Type                *string         `json:"type"`
	Subject             *string         `json:"subject"`
	SubjectNameStrategy *string         `json:"subject_name_strategy"`
	SchemaID            *int64          `json:"schema_id"`
	SchemaVersion       *int64          `json:"schema_version"`
	Schema              *string         `json:"schema"` // a raw schema: refused
	Data                json.RawMessage `json:"data"`
}

// hasSchemaFields says whether d names a schema (its subject, strategy, id, version or text).
func (d *v3Data) hasSchemaFields() bool {
	return d.Subject != nil || d.SubjectNameStrategy != nil || d.SchemaID != nil || d.SchemaVersion != nil || d.Schema != nil
}

// v3Selector is a value's schema selector as the core takes it (tg_publish_start_with_schema).
type v3Selector struct {
	Format   string `json:"format,omitempty"`
	SchemaID int64  `json:"schema_id,omitempty"`
	Subject  string `json:"subject,omitempty"`
	Version  int64  `json:"version,omitempty"`
}

// v3Header is a record header; its value is base64 (or null).
type v3Header struct {
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

// v3Request is Confluent's ProduceRequest; ID is set in a records:batch entry.
type v3Request struct {
	ID          json.RawMessage `json:"id,omitempty"`
	PartitionID *int32          `json:"partition_id"`
	Headers     []v3Header      `json:"headers"`
	Key         *v3Data         `json:"key"`
	Value       *v3Data         `json:"value"`
	Timestamp   *time.Time      `json:"timestamp"`
}

// v3Size is a key or value in an answer: its type and size in bytes.
type v3Size struct {
	Type string `json:"type"`
	Size int    `json:"size"`
}

// v3Response is Confluent's ProduceResponse (and, with ID, a records:batch success).
type v3Response struct {
	ID          string  `json:"id,omitempty"`
	ErrorCode   int     `json:"error_code,omitempty"`
	Message     string  `json:"message,omitempty"`
	ClusterID   string  `json:"cluster_id,omitempty"`
	TopicName   string  `json:"topic_name,omitempty"`
	PartitionID *int32  `json:"partition_id,omitempty"`
	Offset      *int64  `json:"offset,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Key         *v3Size `json:"key,omitempty"`
	Value       *v3Size `json:"value,omitempty"`
}

// v3Failure is a records:batch failure entry.
type v3Failure struct {
	ID        string `json:"id"`
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// v3Error is an error answer: Confluent's {"error_code": ..., "message": ...}.
type v3Error struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// v3Entry is one parsed record of a request, or why it cannot be produced.
type v3Entry struct {
	id   string
	rec  core.Record
	meta v3Meta
}

// v3Meta is what a record's delivery report states besides its outcome.
type v3Meta struct {
	code        int // the request's own error code; 0 when the record can be produced
	msg         string
	valueType   string // the request's value type ("": none); the answer names the core's format
	selected    bool   // the value names its schema: the core's 404 is that schema's
	keyType     string // the request's key type, or the one its data implies; the core's with key_schema
	keySize     int
	timestampMs int64
}

// Serve answers a v3 produce request on rc.
func Serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route) {
	started := time.Now()
	cluster, topic, isBatch, err := confluentPath(rc, r.URL.Path)
	m := metrics.For(topic)
	if m != nil {
		sw := &respond.StatusWriter{ResponseWriter: w}
		w = sw
		defer func() { m.Answered(sw.Status, started) }()
	}
	fail := func(status, code int, msg string) {
		logging.Access(status, topic, msg)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(o.RetryAfter))
		}
		respond.JSON(w, status, v3Error{ErrorCode: code, Message: msg})
	}
	switch {
	case err != nil:
		fail(http.StatusNotFound, http.StatusNotFound, err.Error())
		return
	case topic == "":
		fail(http.StatusNotFound, v3TopicNotFound, "Topic not found.")
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; use POST", r.Method))
		return
	}
	if ndjson, _, ok := request.ContentType(r.Header.Get("Content-Type")); !ok || ndjson {
		fail(http.StatusUnsupportedMediaType, v3Unsupported, "send Content-Type: application/json")
		return
	}
	if !isBatch && serveStream(w, r, o, rc, cluster, topic, m) {
		return
	}
	body, buf, status, msg := request.Body(r, rc.Batch.MaxBodyBytes, batch.TooLarge, m)
	defer request.Release(buf)
	if status != 0 {
		code := v3BadRequest
		switch status {
		case http.StatusRequestEntityTooLarge:
			code = v3TooLarge
		case http.StatusServiceUnavailable: // the gateway's body budget is held by other requests
			code = v3Unavailable
		}
		fail(status, code, msg)
		return
	}
	reqs, code, msg := v3Requests(body, isBatch, rc.Batch.MaxRecords)
	if code != 0 {
		fail(v3HTTPStatus(code), code, msg)
		return
	}
	entries := make([]v3Entry, len(reqs))
	for i := range reqs {
		entries[i] = newV3Entry(r, topic, &reqs[i], o.TraceHeaders, o.JSONKeys)
	}
	outs := v3Produce(r, o.Pub, topic, rc, entries)
	m.BatchRecords(outs)
	if isBatch {
		respond.JSON(w, http.StatusMultiStatus, v3BatchAnswer(cluster, topic, entries, outs))
		return
	}
	if len(entries) == 1 { // one record: its answer, with the HTTP status of its error code
		res := v3Answer(cluster, topic, &entries[0].meta, outs[0])
		status := http.StatusOK
		if res.ErrorCode != http.StatusOK {
			status = v3HTTPStatus(res.ErrorCode)
			logging.Access(status, topic, res.Message)
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(o.RetryAfter))
		}
		respond.JSON(w, status, res)
		return
	}
	// Concatenated records (Confluent's streaming format): 200 and one delivery report per record,
	// in order, each followed by "\r\n" as Confluent writes them.
	var b []byte
	for i := range entries {
		b = appendV3Report(b, v3Answer(cluster, topic, &entries[i].meta, outs[i]))
	}
	respond.Body(w, http.StatusOK, b)
}

// v3Produce produces the entries that parsed, each answered on its own (or in one transaction
// with the route's batch.atomic); an entry that did not parse keeps its error.
func v3Produce(r *http.Request, pub core.Publisher, topic string, rc *config.Route, entries []v3Entry) []core.Outcome {
	outs := make([]core.Outcome, len(entries))
	var records []core.Record
	var index []int
	for i := range entries {
		if entries[i].meta.code == 0 {
			records = append(records, entries[i].rec)
			index = append(index, i)
		}
	}
	if len(records) == 0 {
		return outs
	}
	res, _ := pub.PublishBatch(r.Context(), topic, records, core.BatchMode{Partial: true, Atomic: rc.Batch.Atomic})
	for j, o := range res {
		outs[index[j]] = o
	}
	return outs
}

// v3Requests parses a body: a records:batch {"entries": [...]}, or one or more concatenated
// ProduceRequests. A code other than 0 refuses the request.
func v3Requests(body []byte, isBatch bool, maxRecords int) ([]v3Request, int, string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if isBatch {
		var b struct {
			Entries []v3Request `json:"entries"`
		}
		if err := dec.Decode(&b); err != nil {
			return nil, v3BadRequest, "the request body is not a produce batch request: " + err.Error()
		}
		if dec.More() {
			return nil, v3BadRequest, "text after the produce batch request"
		}
		seen := map[string]bool{}
		for i, e := range b.Entries {
			var id string
			if json.Unmarshal(e.ID, &id) != nil {
				return nil, v3BatchErr, fmt.Sprintf("entries[%d].id: Batch entry identifier is not a valid string.", i)
			}
			if seen[id] {
				return nil, v3BatchErr, "Batch entry IDs are not distinct."
			}
			seen[id] = true
		}
		switch {
		case len(b.Entries) == 0:
			return nil, v3BatchErr, "Empty batch."
		case len(b.Entries) > maxRecords:
			return nil, v3BatchErr, fmt.Sprintf("Too many entries in batch: the limit is %d (batch.max_records).", maxRecords)
		}
		return b.Entries, 0, ""
	}
	var reqs []v3Request
	for {
		var req v3Request
		end, msg := decodeV3Request(dec, len(reqs)+1, &req)
		if end {
			break
		}
		if msg != "" {
			return nil, v3BadRequest, msg
		}
		if len(reqs) == maxRecords {
			return nil, v3TooLarge, fmt.Sprintf("more than %d records in one request, the limit (batch.max_records)", maxRecords)
		}
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return nil, v3BadRequest, "the request body is empty; send a produce request"
	}
	return reqs, 0, ""
}

// decodeV3Request decodes the nth of a body's concatenated produce requests into req: end after
// the last; else msg says why it is not a produce request ("": it is).
func decodeV3Request(dec *json.Decoder, n int, req *v3Request) (end bool, msg string) {
	err := dec.Decode(req)
	switch {
	case errors.Is(err, io.EOF):
		return true, ""
	case err != nil:
		return false, fmt.Sprintf("record %d: the request body is not a produce request: %v", n, err)
	case req.ID != nil:
		return false, fmt.Sprintf("record %d: \"id\" belongs in a records:batch entry", n)
	}
	return false, ""
}

// newV3Entry turns a request into the record to produce: the value's JSON (encoded with the
// topic's schema, or the one its type, schema_id, subject, subject_name_strategy and
// schema_version select), the key's bytes (its JSON text when jsonKeys: the core's key_schema
// encodes it), the headers (with r's trace context when trace), partition and timestamp.
func newV3Entry(r *http.Request, topic string, req *v3Request, trace, jsonKeys bool) v3Entry {
	var e v3Entry
	_ = json.Unmarshal(req.ID, &e.id) // checked by v3Requests for batch entries
	bad := func(code int, format string, a ...any) v3Entry {
		e.meta.code, e.meta.msg = code, fmt.Sprintf(format, a...)
		return e
	}
	if req.Value == nil || len(req.Value.Data) == 0 || string(req.Value.Data) == "null" {
		return bad(v3BadRequest, "value: missing (send {\"value\": {\"data\": {...}}})")
	}
	sel, valueType, code, msg := v3ValueSchema(req.Value, topic)
	if code != 0 {
		return bad(code, "%s", msg)
	}
	e.rec.Value, e.rec.ValueSchema = req.Value.Data, sel
	e.meta.valueType, e.meta.selected = valueType, req.Value.hasSchemaFields()
	if req.Key != nil && len(req.Key.Data) > 0 && string(req.Key.Data) != "null" {
		key, keyType, err := v3Key(req.Key, jsonKeys)
		if err != nil {
			return bad(v3SerializationErr, "key: %v", err)
		}
		e.rec.Key, e.meta.keyType, e.meta.keySize = key, keyType, len(key)
	}
	headers, err := v3Headers(req.Headers)
	if err != nil {
		return bad(v3BadRequest, "headers: %v", err)
	}
	if trace {
		headers = request.WithTraceContext(r.Context(), headers, r.Header)
	}
	e.rec.Headers = headers
	if req.PartitionID != nil {
		if *req.PartitionID < 0 {
			return bad(v3BadRequest, "partition_id: must be 0 or more")
		}
		e.rec.Partition = req.PartitionID
	}
	// The record's timestamp is always chosen here, so that the answer states it exactly.
	ts := time.Now()
	if req.Timestamp != nil {
		ts = *req.Timestamp
	}
	ms := ts.UnixMilli()
	e.rec.TimestampMs, e.meta.timestampMs = &ms, ms
	return e
}

// v3ValueSchema is the core's schema selector for a value (nil: the topic's schema, no type
// check) and the type its answer states, or a code and message refusing the value. Confluent's
// rules: subject and subject_name_strategy exclude each other, as do schema_id and
// schema_version; RECORD_NAME and TOPIC_RECORD_NAME name a subject only from a schema, so
// without schema_id they are refused; TOPIC_NAME names <topic>-value.
func v3ValueSchema(v *v3Data, topic string) (sel []byte, valueType string, code int, msg string) {
	var s v3Selector
	if v.Type != nil {
		t := strings.ToUpper(*v.Type)
		switch t {
		case "AVRO", "JSONSCHEMA", "PROTOBUF":
			s.Format, valueType = t, t
		default:
			return nil, "", v3SerializationErr, fmt.Sprintf("value.type %q is not supported: every value is encoded with a schema (send AVRO, JSONSCHEMA, PROTOBUF or no type)", *v.Type)
		}
	}
	strategy := ""
	if v.SubjectNameStrategy != nil {
		strategy = strings.ToUpper(*v.SubjectNameStrategy)
	}
	switch {
	case v.Schema != nil:
		return nil, "", v3BadRequest, "value.schema: raw schemas are not supported; register the schema and send value.schema_id or value.schema_version"
	case v.Subject != nil && v.SubjectNameStrategy != nil:
		return nil, "", v3BadRequest, "value: Only one of 'subject_name_strategy' or 'subject' can be used."
	case v.SchemaID != nil && v.SchemaVersion != nil:
		return nil, "", v3BadRequest, "value: Only one of 'schema_id', 'schema_version' or 'schema' can be used."
	case v.SchemaID != nil && (*v.SchemaID < 1 || *v.SchemaID > math.MaxUint32):
		return nil, "", v3BadRequest, fmt.Sprintf("value.schema_id: %d is not a schema id", *v.SchemaID)
	case v.SchemaVersion != nil && *v.SchemaVersion < 1:
		return nil, "", v3BadRequest, fmt.Sprintf("value.schema_version: %d is not a version (1 or more)", *v.SchemaVersion)
	case v.Subject != nil && *v.Subject == "":
		return nil, "", v3BadRequest, "value.subject: empty"
	case strategy != "" && strategy != "TOPIC_NAME" && strategy != "RECORD_NAME" && strategy != "TOPIC_RECORD_NAME":
		return nil, "", v3BadRequest, fmt.Sprintf("value.subject_name_strategy %q: use TOPIC_NAME, RECORD_NAME or TOPIC_RECORD_NAME", *v.SubjectNameStrategy)
	case v.SchemaID == nil && (strategy == "RECORD_NAME" || strategy == "TOPIC_RECORD_NAME"):
		return nil, "", v3BadRequest, fmt.Sprintf("value.subject_name_strategy: Cannot use subject_name_strategy=%s without schema_id or schema.", strategy)
	}
	switch {
	case v.SchemaID != nil: // the id names the schema; a subject or strategy with it is not checked
		s.SchemaID = *v.SchemaID
	default:
		if v.Subject != nil {
			s.Subject = *v.Subject
		} else if strategy == "TOPIC_NAME" {
			s.Subject = topic + "-value"
		}
		if v.SchemaVersion != nil {
			s.Version = *v.SchemaVersion
		}
	}
	if s == (v3Selector{}) {
		return nil, valueType, 0, ""
	}
	sel, _ = json.Marshal(s) // a plain struct: cannot fail
	return sel, valueType, 0, ""
}

// v3Key is a key's bytes by its type: BINARY (base64), STRING or JSON (its JSON text); without
// a type, a JSON string is taken as a string and anything else as JSON. With jsonKeys (the core's
// key_schema encodes every key) an untyped key, or one typed AVRO, JSONSCHEMA or PROTOBUF, is its
// JSON text: the key schema, not the request, says what the key is.
func v3Key(k *v3Data, jsonKeys bool) ([]byte, string, error) {
	if k.hasSchemaFields() {
		return nil, "", errors.New("schema fields (subject, subject_name_strategy, schema_id, schema_version, schema) are not supported for keys; the core's key_schema names the key's schema")
	}
	var s string
	isString := json.Unmarshal(k.Data, &s) == nil
	t := "STRING"
	switch {
	case k.Type != nil:
		t = strings.ToUpper(*k.Type)
	case jsonKeys:
		t = "JSON"
	case !isString:
		t = "JSON"
	}
	switch t {
	case "AVRO", "JSONSCHEMA", "PROTOBUF":
		if !jsonKeys {
			return nil, t, fmt.Errorf("type %q needs a key schema (the core's key_schema); send BINARY, STRING or JSON", t)
		}
		return bytes.TrimSpace(k.Data), t, nil
	case "BINARY":
		if !isString {
			return nil, t, errors.New("BINARY data must be a base64 string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, t, fmt.Errorf("BINARY data is not base64: %v", err)
		}
		return b, t, nil
	case "STRING":
		if !isString {
			return nil, t, errors.New("STRING data must be a JSON string")
		}
		return []byte(s), t, nil
	case "JSON":
		return bytes.TrimSpace(k.Data), t, nil
	default:
		return nil, t, fmt.Errorf("type %q is not supported for keys (BINARY, STRING, JSON, or with key_schema AVRO, JSONSCHEMA, PROTOBUF)", t)
	}
}

// v3Headers is the record headers, in order with duplicates kept. Values are base64 of any bytes,
// passed on as those bytes; null is an empty value.
func v3Headers(hs []v3Header) ([]core.Header, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make([]core.Header, len(hs))
	for i, h := range hs {
		if h.Name == "" {
			return nil, fmt.Errorf("headers[%d].name: empty", i)
		}
		out[i].Name = h.Name
		if h.Value != nil {
			v, err := base64.StdEncoding.DecodeString(*h.Value)
			if err != nil {
				return nil, fmt.Errorf("headers[%d].value: not base64: %v", i, err)
			}
			out[i].Value = v
		}
	}
	return out, nil
}

// v3Answer is one record's delivery report.
func v3Answer(cluster, topic string, e *v3Meta, o core.Outcome) v3Response {
	if e.code != 0 {
		return v3Response{ErrorCode: e.code, Message: e.msg}
	}
	if o.Status != http.StatusOK {
		code := v3ErrorCode(o.Status, o.Msg)
		if e.selected && o.Status == http.StatusNotFound {
			// The schema the value names is not in the registry: REST Proxy's serialization error.
			code = v3SerializationErr
		}
		msg := o.Msg
		if code == v3SerializationErr {
			msg = "Error serializing message. " + msg
		}
		return v3Response{ErrorCode: code, Message: msg}
	}
	res := v3Response{
		ErrorCode: http.StatusOK, ClusterID: cluster, TopicName: topic,
		PartitionID: &o.Delivery.Partition, Offset: &o.Delivery.Offset,
		Timestamp: time.UnixMilli(e.timestampMs).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Value:     &v3Size{Type: firstOf(o.Delivery.ValueFormat, e.valueType, "PROTOBUF"), Size: o.Delivery.Bytes},
	}
	switch {
	case o.Delivery.KeyFormat != "": // encoded with the key schema: its format and size as produced
		res.Key = &v3Size{Type: o.Delivery.KeyFormat, Size: o.Delivery.KeyBytes}
	case e.keyType != "":
		res.Key = &v3Size{Type: e.keyType, Size: e.keySize}
	}
	return res
}

// firstOf is the first of ss that is not empty.
func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// appendV3Report appends a delivery report (or error) as Confluent's streaming answers carry
// them: its JSON, then "\r\n".
func appendV3Report(b []byte, doc any) []byte {
	j, _ := json.Marshal(doc) // plain structs: cannot fail
	return append(append(b, j...), "\r\n"...)
}

// v3BatchAnswer is a records:batch answer: successes and failures by entry id.
func v3BatchAnswer(cluster, topic string, entries []v3Entry, outs []core.Outcome) any {
	type answer struct {
		Successes []v3Response `json:"successes"`
		Failures  []v3Failure  `json:"failures"`
	}
	a := answer{Successes: []v3Response{}, Failures: []v3Failure{}}
	for i := range entries {
		res := v3Answer(cluster, topic, &entries[i].meta, outs[i])
		if res.ErrorCode == http.StatusOK {
			res.ID, res.ErrorCode = entries[i].id, 0
			a.Successes = append(a.Successes, res)
		} else {
			a.Failures = append(a.Failures, v3Failure{ID: entries[i].id, ErrorCode: res.ErrorCode, Message: res.Message})
		}
	}
	return a
}

// v3ErrorCode is Confluent's error code for a core status and message. A 400 is a value that
// does not fit the schema, unless the core says the partition does not exist (its message
// then starts with "partition ", rust-core's producer.rs).
func v3ErrorCode(status int, msg string) int {
	switch status {
	case http.StatusBadRequest:
		if strings.HasPrefix(msg, "partition ") && strings.Contains(msg, "no such partition") {
			return v3PartitionNotFound
		}
		return v3SerializationErr
	case http.StatusForbidden:
		return v3Forbidden
	case http.StatusNotFound:
		return v3TopicNotFound
	case http.StatusRequestEntityTooLarge:
		return v3TooLarge
	case http.StatusServiceUnavailable:
		return v3BrokerUnavailable
	case http.StatusGatewayTimeout:
		return v3KafkaRetriable
	default:
		return v3KafkaError
	}
}

// v3HTTPStatus is the HTTP status of an error code: its first three digits (422 for 42207).
func v3HTTPStatus(code int) int {
	for code >= 1000 {
		code /= 10
	}
	return code
}

// confluentPath reads {cluster_id} and {topic_name} from <prefix>clusters/{cluster_id}/topics/
// {topic_name}/records[:batch]. topic is "" when rc does not expose it; err names a path that is
// not a v3 produce path, or a cluster id other than the route's.
func confluentPath(rc *config.Route, path string) (cluster, topic string, isBatch bool, err error) {
	rest := path
	if rc.Prefix != "" {
		rest = strings.TrimPrefix(path, rc.Prefix)
	}
	seg := strings.Split(strings.Trim(rest, "/"), "/")
	n := len(seg)
	if n < 5 || seg[n-5] != "clusters" || seg[n-3] != "topics" || (seg[n-1] != "records" && seg[n-1] != "records:batch") ||
		(rc.Prefix != "" && n != 5) {
		return "", "", false, fmt.Errorf("not a produce path: expected %sclusters/{cluster_id}/topics/{topic_name}/records (or records:batch)", rc.Prefix)
	}
	cluster, topic, isBatch = seg[n-4], seg[n-2], seg[n-1] == "records:batch"
	if rc.ClusterID != "" && cluster != rc.ClusterID {
		return cluster, "", isBatch, fmt.Errorf("cluster %q not found", cluster)
	}
	if config.CheckTopicName(topic) != nil || !rc.Allows(topic) {
		return cluster, "", isBatch, nil
	}
	return cluster, topic, isBatch, nil
}
