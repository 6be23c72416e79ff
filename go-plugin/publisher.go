package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// delivery is where a record landed, and how long the broker took to acknowledge it.
type delivery struct {
	Partition int32
	Offset    int64
	Acked     time.Duration // from queueing to the acknowledgement; 0 when unknown
	Bytes     int           // bytes of the value as produced (0: dry run, or unknown)
}

// publisher produces records; implementations are safe for concurrent use.
type publisher interface {
	// publish validates body against topic's schema, encodes and produces it, and waits
	// for the broker's acknowledgement. status is an HTTP status (200 on success);
	// msg explains any other status. headersJSON may be nil; key nil means no key.
	// When ctx ends first (client gone, gateway timeout) it stops waiting with a 504.
	publish(ctx context.Context, topic string, body, headersJSON, key []byte) (status int, d delivery, msg string)
	// publishBatch checks and encodes every record before producing any; then, if all are valid
	// (or mode.partial), produces the valid ones: each on its own, or (mode.atomic) as one Kafka
	// transaction. The answer has one outcome per record, in order; a record that was not
	// produced because another one is invalid has status 0; valid is false when any record
	// failed the checks. ctx bounds the wait as for publish.
	publishBatch(ctx context.Context, topic string, records []batchRecord, mode batchMode) (out []outcome, valid bool)
	// openStream starts a stream of records to topic; the caller keeps at most capacity of them
	// unanswered at once (their outcomes are buffered for that many, so the core never waits).
	openStream(topic string, capacity int) recordStream
}

// recordStream produces one request's records as they arrive, without waiting for any.
type recordStream interface {
	// start checks, encodes and queues r. 200 means queued: exactly one outcome carrying token
	// follows on outcomes(), within the delivery timeout; tokens grow from call to call. Any other
	// status is r's answer (msg says why) and nothing follows.
	start(r batchRecord) (token uint64, status int, msg string)
	// outcomes delivers the outcomes of queued records, in the order the broker answers them.
	outcomes() <-chan outcome
}

// batchRecord is one record of a batch request.
type batchRecord struct {
	value       []byte
	headersJSON []byte // nil: no headers
	key         []byte // nil: no key
	partition   *int32 // nil: the partitioner's choice
	timestampMs *int64 // nil: the time of sending
}

// batchMode says what a batch with invalid records does and how it is written.
type batchMode struct {
	partial bool
	atomic  bool
}

// outcome is a record's final answer: an HTTP status, where it landed, or why not.
type outcome struct {
	status int
	d      delivery
	msg    string
	token  uint64 // the core's token of the record (batches match outcomes to records by it)
}

// newCorePublisher creates a publisher from a core config; status is an HTTP status.
// It is a variable so tests can replace the core.
var newCorePublisher = coreNewPublisher

var (
	publishersMu sync.Mutex
	publishers   = map[string]publisher{}
)

// publisherFor returns the process-wide publisher for a (canonical) core config,
// creating it on first use. Publishers live as long as the process: KrakenD CE
// builds its handlers once.
func publisherFor(core []byte) (publisher, error) {
	publishersMu.Lock()
	defer publishersMu.Unlock()
	if p, ok := publishers[string(core)]; ok {
		return p, nil
	}
	p, status, msg := newCorePublisher(core)
	if status != 200 || p == nil {
		return nil, fmt.Errorf("%s: the core refused the configuration (%d): %s", pluginName, status, msg)
	}
	publishers[string(core)] = p
	return p, nil
}

// setUp is the work both factories share: read the "topicgate" block of extra, parse it
// with parse, and get the publisher for its core config; failures are logged once here.
func setUp(extra map[string]interface{}, parse func([]byte, func(string) (string, bool)) (*pluginConfig, error)) (*pluginConfig, publisher, error) {
	block, err := pluginBlock(extra)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := parse(block, nil)
	if err != nil {
		logError(err.Error())
		return nil, nil, err
	}
	if cfg.Core == nil { // a server block that only serves metrics and readiness
		return cfg, nil, nil
	}
	pub, err := publisherFor(cfg.Core)
	if err != nil {
		logError(err.Error())
		return nil, nil, err
	}
	return cfg, pub, nil
}
