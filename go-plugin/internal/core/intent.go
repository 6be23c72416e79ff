package core

import "time"

// IntentRecord is one record of the shared idempotency log, as the core read it back.
type IntentRecord struct {
	Partition   int32
	Offset      int64
	TimestampMs int64 // -1: none
	Value       []byte
}

// IntentLog is the idempotency log shared by gateway replicas through a Kafka topic (core
// option "idempotency"; tg_intent_* in include/topicgate.h). Publishers implement it; Shared
// says whether this one has the log.
type IntentLog interface {
	// Shared says whether the publisher has the log, and its delivery timeout (how long a
	// record it sends may stay unacknowledged).
	Shared() (on bool, deliveryTimeout time.Duration)
	// IntentAppend appends value under key and waits for the broker: where it landed, or a
	// status other than 200 and why.
	IntentAppend(key, value []byte) (d Delivery, status int, msg string)
	// IntentWaitRead waits at most timeout until the log is read past offset of partition.
	IntentWaitRead(partition int32, offset int64, timeout time.Duration) (read bool, status int, msg string)
	// IntentWaitKey waits at most timeout until the number of key's records read differs from
	// seen (a record of it came in).
	IntentWaitKey(key []byte, seen int, timeout time.Duration) (changed bool, status int, msg string)
	// IntentRecords lists key's records read so far, in offset order.
	IntentRecords(key []byte) (recs []IntentRecord, status int, msg string)
}
