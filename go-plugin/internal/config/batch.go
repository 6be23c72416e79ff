package config

import (
	"fmt"
	"time"
)

// Defaults of a route's "batch" block.
const (
	defaultBatchMaxRecords   = 1000
	defaultBatchMaxBodyBytes = 16 << 20
	defaultStreamInFlight    = 1000
	defaultStreamIdle        = 10 * time.Second
	maxStreamInFlight        = 100000 // librdkafka's default queue.buffering.max.messages
)

// Batch is how a route takes many records per request (application/x-ndjson).
type Batch struct {
	// MaxRecords is the most records per request; 0 turns batches off for the route.
	MaxRecords int
	// MaxBodyBytes bounds a batch request's body, MaxLineBytes each of its lines.
	MaxBodyBytes int64
	MaxLineBytes int64
	// Envelope: each line is {"value": ..., "key": "...", "headers": {...}} instead of the value itself.
	Envelope bool
	// Partial writes the valid records of a batch that has invalid ones (default: write none).
	Partial bool
	// Atomic writes a batch as one Kafka transaction: all of it or nothing.
	Atomic bool
	// StreamInFlight bounds a stream's records produced and not yet answered (reading waits while
	// it is reached); 0 turns streams off for the route.
	StreamInFlight int
	// StreamIdle cuts a stream whose client sent nothing (or read nothing of the answer) for so long.
	StreamIdle time.Duration
}

// rawStream is the JSON shape of a route's "batch": {"stream": {...}} block.
type rawStream struct {
	InFlight      *int   `json:"in_flight"`
	IdleTimeoutMs *int64 `json:"idle_timeout_ms"`
}

// rawBatch is the JSON shape of a route's "batch" block.
type rawBatch struct {
	MaxRecords   *int       `json:"max_records"`
	MaxBodyBytes *int64     `json:"max_body_bytes"`
	MaxLineBytes *int64     `json:"max_line_bytes"`
	Envelope     bool       `json:"envelope"`
	Partial      bool       `json:"partial"`
	Atomic       bool       `json:"atomic"`
	Stream       *rawStream `json:"stream"`
}

// parseBatch reads a route's "batch" block (nil: the defaults); a line may be as large as the
// route's single-record body unless max_line_bytes says otherwise.
func parseBatch(rb *rawBatch, maxBodyBytes int64, where string) (Batch, error) {
	bc := Batch{MaxRecords: defaultBatchMaxRecords, MaxBodyBytes: defaultBatchMaxBodyBytes, MaxLineBytes: maxBodyBytes,
		StreamInFlight: defaultStreamInFlight, StreamIdle: defaultStreamIdle}
	if rb == nil {
		return bc, nil
	}
	bc.Envelope, bc.Partial, bc.Atomic = rb.Envelope, rb.Partial, rb.Atomic
	bad := func(key, why string) (Batch, error) {
		return bc, fmt.Errorf("%s: %s: batch.%s %s", Name, where, key, why)
	}
	if rb.MaxRecords != nil {
		if *rb.MaxRecords < 0 {
			return bad("max_records", "must be at least 0 (0 turns batches off)")
		}
		bc.MaxRecords = *rb.MaxRecords
	}
	if rb.MaxBodyBytes != nil {
		if *rb.MaxBodyBytes < 1 {
			return bad("max_body_bytes", "must be at least 1")
		}
		bc.MaxBodyBytes = *rb.MaxBodyBytes
	}
	if rb.MaxLineBytes != nil {
		if *rb.MaxLineBytes < 1 {
			return bad("max_line_bytes", "must be at least 1")
		}
		bc.MaxLineBytes = *rb.MaxLineBytes
	}
	if rs := rb.Stream; rs != nil {
		if rs.InFlight != nil {
			if *rs.InFlight < 0 || *rs.InFlight > maxStreamInFlight {
				return bad("stream.in_flight", fmt.Sprintf("must be from 0 to %d (0 turns streams off)", maxStreamInFlight))
			}
			bc.StreamInFlight = *rs.InFlight
		}
		if rs.IdleTimeoutMs != nil {
			if *rs.IdleTimeoutMs < 1 {
				return bad("stream.idle_timeout_ms", "must be at least 1")
			}
			bc.StreamIdle = time.Duration(*rs.IdleTimeoutMs) * time.Millisecond
		}
	}
	if bc.MaxLineBytes > bc.MaxBodyBytes {
		bc.MaxLineBytes = bc.MaxBodyBytes
	}
	return bc, nil
}
