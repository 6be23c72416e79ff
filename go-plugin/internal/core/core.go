// Package core is the plugin's binding to the topicgate core (Rust, linked in through cgo; C
// header include/topicgate.h). It is the only package that imports "C".
package core

import (
	"context"
	"strings"
	"time"
)

// Delivery is where a record landed, and how long the broker took to acknowledge it.
type Delivery struct {
	Partition int32
	Offset    int64
	Acked     time.Duration // from queueing to the acknowledgement; 0 when unknown
	Bytes     int           // bytes of the value as produced (0: dry run, or unknown)
	// ValueFormat is the schema format the core encoded the value with ("AVRO", "JSONSCHEMA",
	// "PROTOBUF"; "": unknown); KeyFormat the key's with key_schema ("": the caller's bytes).
	ValueFormat, KeyFormat string
	KeyBytes               int // bytes of the key as produced (framing included)
}

// formatName is a completion's format code (include/topicgate.h, TG_FORMAT_*) as Confluent names
// it; "" for none or an unknown code.
func formatName(code int) string {
	switch code {
	case 1:
		return "AVRO"
	case 2:
		return "JSONSCHEMA"
	case 3:
		return "PROTOBUF"
	}
	return ""
}

// Publisher produces records; implementations are safe for concurrent use.
type Publisher interface {
	// Publish validates body against topic's schema, encodes and produces it, and waits
	// for the broker's acknowledgement. status is an HTTP status (200 on success);
	// msg explains any other status. headers may be nil; key nil means no key.
	// When ctx ends first (client gone, gateway timeout) it stops waiting with a 504.
	Publish(ctx context.Context, topic string, body []byte, headers []Header, key []byte) (status int, d Delivery, msg string)
	// PublishBatch checks and encodes every record before producing any; then, if all are valid
	// (or mode.Partial), produces the valid ones: each on its own, or (mode.Atomic) as one Kafka
	// transaction. The answer has one outcome per record, in order; a record that was not
	// produced because another one is invalid has status 0; valid is false when any record
	// failed the checks. ctx bounds the wait as for Publish.
	PublishBatch(ctx context.Context, topic string, records []Record, mode BatchMode) (out []Outcome, valid bool)
	// FindByHeader searches topic, every partition from the records timestamped at or after
	// sinceMs to its end (read_committed), for the first record with the header name: value, for at
	// most timeout: found and where, or a status other than 200 (503, 504) and why.
	FindByHeader(topic string, sinceMs int64, name string, value []byte, timeout time.Duration) (found bool, d Delivery, status int, msg string)
	// OpenStream starts a stream of records to topic; the caller keeps at most capacity of them
	// unanswered at once (their outcomes are buffered for that many, so the core never waits).
	OpenStream(topic string, capacity int) Stream
}

// Stream produces one request's records as they arrive, without waiting for any.
type Stream interface {
	// Start checks, encodes and queues r. 200 means queued: exactly one outcome carrying token
	// follows on Outcomes(), within the delivery timeout; tokens grow from call to call. Any other
	// status is r's answer (msg says why) and nothing follows.
	Start(r Record) (token uint64, status int, msg string)
	// Outcomes delivers the outcomes of queued records, in the order the broker answers them.
	Outcomes() <-chan Outcome
}

// Header is one record header: a name (UTF-8 text, not empty) and a value (any bytes). A record's
// headers are written in the order given, duplicates kept.
type Header struct {
	Name  string
	Value []byte
}

// KeyMessage words msg, a core answer for a record, with what the client calls its key: a
// message about the key ("key: …", when the core encodes keys with a key schema) says label
// instead; any other message, or an empty label, is left as it is.
func KeyMessage(msg, label string) string {
	if label == "" || !strings.HasPrefix(msg, "key: ") {
		return msg
	}
	return label + msg[len("key"):]
}

// Record is one record of a batch or stream.
type Record struct {
	Value   []byte
	Headers []Header // nil: no headers
	Key     []byte   // nil: no key
	// KeyLabel is what the client calls the key (e.g. "message-key" for the request header):
	// the core's errors about the key ("key: …") are worded with it; "" keeps "key".
	KeyLabel    string
	Partition   *int32 // nil: the partitioner's choice
	TimestampMs *int64 // nil: the time of sending
	// ValueSchema selects the value's schema (JSON, as tg_publish_start_with_schema takes it:
	// format, schema_id, subject, version); nil: the topic's schema.
	ValueSchema []byte
}

// BatchMode says what a batch with invalid records does and how it is written.
type BatchMode struct {
	Partial bool
	Atomic  bool
}

// Outcome is a record's final answer: an HTTP status, where it landed, or why not.
type Outcome struct {
	Status   int
	Delivery Delivery
	Msg      string
	Token    uint64 // the core's token of the record (batches match outcomes to records by it)
}
