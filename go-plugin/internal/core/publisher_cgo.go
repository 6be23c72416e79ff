//go:build cgo && !topicgate_nocore

package core

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: ${SRCDIR}/../../../target/release/libtopicgate.a -lssl -lcrypto -lz -lm -ldl -lpthread
#cgo noescape tg_publish_start_with_schema
#cgo noescape tg_publisher_completions
// noescape lets the Go pointer arguments of these two hot calls stay wherever Go put them (a
// goroutine's stack included) instead of forcing them to the heap. That is only sound for a C
// function that neither keeps a pointer nor calls back into Go: a callback may grow and move the
// goroutine's stack under the C code. tg_publisher_new must not be listed: librdkafka reports
// config warnings through the log callback (topicgateGoLog) while it runs. Without the directive
// every Go pointer passed to C escapes to the heap. noescape_test.go checks the list.
#include <stdlib.h>
#include "topicgate.h"

// Defined in log_cgo.go (//export topicgateGoLog).
extern void topicgateGoLog(void *user_data, int32_t level, uint8_t *message, size_t message_len);

static tg_status topicgate_install_log(int32_t max_level) {
	return tg_set_log_callback((tg_log_callback)topicgateGoLog, NULL, max_level);
}
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/topicgate/topicgate/go-plugin/internal/logging"
)

// errBufLen is the size of the error buffers handed to the core.
const errBufLen = 2048

// completionBatch is how many outcomes the poller takes per call; pollTimeoutMs bounds each wait.
const (
	completionBatch = 64
	pollTimeoutMs   = 1000
)

// coreLogMaxLevel: records above it (4 debug, 5 trace) never cross the boundary.
const coreLogMaxLevel = 3

// corePublisher owns a tg_publisher; the core is thread-safe, so one serves every request.
// A request starts its record with tg_publish_start_with_schema and waits on a channel; one poller
// goroutine collects the outcomes. Why not the blocking tg_publish: a cgo call that waits a
// Kafka round trip parks an OS thread per request, and the runtime's hand-offs of those
// threads cost the gateway more CPU than publishing does.
type corePublisher struct {
	p *C.tg_publisher

	mu      sync.Mutex
	next    uint64                    // the last token handed out
	waiting map[uint64]chan<- Outcome // started records by token, until their outcome arrives

	closing atomic.Bool   // Close was called: the poller ends
	polled  chan struct{} // closed when the poller has ended

	shared          bool          // the core has the shared idempotency log (IntentLog)
	deliveryTimeout time.Duration // the core's delivery timeout
}

// NewPublisher creates a publisher from a core config (JSON); status is an HTTP status, msg says
// why on anything but 200. Its poller runs until Close.
func NewPublisher(config []byte) (Publisher, int, string) {
	var out *C.tg_publisher
	var errbuf [errBufLen]C.char
	st := C.tg_publisher_new(bytesPtr(config), C.size_t(len(config)), &out, &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 || out == nil {
		return nil, int(st), C.GoString(&errbuf[0])
	}
	c := &corePublisher{p: out, waiting: map[uint64]chan<- Outcome{}, polled: make(chan struct{})}
	c.shared, c.deliveryTimeout = sharedOf(config)
	go c.poll()
	return c, 200, ""
}

// Publish queues the record with tg_publish_start_with_schema and waits for its outcome from the poller.
func (c *corePublisher) Publish(ctx context.Context, topic string, body []byte, headers []Header, key []byte) (int, Delivery, string) {
	w := waiters.Get().(*waiter)
	token, st := c.queue(topic, Record{Value: body, Headers: headers, Key: key}, w.done, &w.errbuf)
	if st != 200 {
		msg := C.GoString(&w.errbuf[0])
		waiters.Put(w)
		return note(ctx, st), Delivery{}, msg
	}
	// The core answers every queued record by the delivery timeout (librdkafka's message.timeout.ms);
	// the request's context bounds the wait too, and a deadline ends it a little early so that the
	// 504 reaches the client before KrakenD's endpoint timeout does (see answerWithin).
	queued := time.Now()
	var early <-chan time.Time
	if d, ok := answerWithin(ctx); ok {
		w.timer.Reset(d)
		early = w.timer.C
	}
	select {
	case o := <-w.done:
		st, d, msg := w.answer(o, queued)
		return note(ctx, st), d, msg
	case <-ctx.Done():
	case <-early:
	}
	if wt := watchOf(ctx); wt != nil {
		select {
		case o := <-w.done: // answered meanwhile
			st, d, msg := w.answer(o, queued)
			return note(ctx, st), d, msg
		default:
		}
		// The record stays registered: its late outcome settles the request's Idempotency-Key.
		wt.pending.Store(true)
		go func() {
			select {
			case o := <-w.done:
				o.Delivery.Acked = time.Since(queued)
				w.release()
				wt.Late <- o
			case <-c.polled: // closed: no outcome will come; still unknown (w is not reused)
				wt.Late <- Outcome{Status: 504, Msg: "the publisher was closed before the record's delivery report"}
			}
		}()
		return note(ctx, 504), Delivery{}, endedMessage(ctx)
	}
	if c.take(token) == nil {
		// The poller took the outcome first and is handing it over (a buffered send): use it.
		return w.answer(<-w.done, queued)
	}
	w.release() // unregistered: nothing will be sent on w.done any more
	return 504, Delivery{}, endedMessage(ctx)
}

// queue registers done under a new token and queues the record with tg_publish_start_with_schema. 200: its
// outcome follows on done. Any other status is the record's answer, its message in errbuf, and
// nothing follows (the token is unregistered).
func (c *corePublisher) queue(topic string, r Record, done chan<- Outcome, errbuf *[errBufLen]C.char) (uint64, int) {
	c.mu.Lock()
	c.next++
	token := c.next
	c.waiting[token] = done
	c.mu.Unlock()

	var pin runtime.Pinner
	a := recordArgs(r, &pin)
	st := C.tg_publish_start_with_schema(c.p,
		stringPtr(topic), C.size_t(len(topic)),
		bytesPtr(r.Value), C.size_t(len(r.Value)),
		a.valueSchema, C.size_t(len(r.ValueSchema)),
		a.headers, a.nHeaders,
		a.key, C.size_t(len(r.Key)),
		a.partition, a.timestamp,
		C.uint64_t(token), &errbuf[0], C.size_t(len(errbuf)))
	pin.Unpin()
	if int(st) != 200 {
		c.take(token)
	}
	return token, int(st)
}

// cRecord is a record's optional parts as the C ABI takes them.
type cRecord struct {
	headers   *C.tg_header // NULL: none
	nHeaders  C.size_t
	key       *C.uint8_t // NULL: none
	partition C.int32_t  // -1: the partitioner's choice
	timestamp C.int64_t  // -1: the time of sending
	// valueSchema is the record's schema selector; NULL: the topic's schema.
	valueSchema *C.uint8_t
}

// recordArgs is r's optional parts for a C call; they point into r (valid while r is) and, for
// the headers, into memory pinned with pin: unpin it after the call.
func recordArgs(r Record, pin *runtime.Pinner) cRecord {
	a := cRecord{partition: -1, timestamp: -1}
	a.headers, a.nHeaders = cHeaders(r.Headers, pin)
	if r.Key != nil {
		a.key = bytesPtr(r.Key)
	}
	if r.ValueSchema != nil {
		a.valueSchema = bytesPtr(r.ValueSchema)
	}
	if r.Partition != nil {
		a.partition = C.int32_t(*r.Partition)
	}
	if r.TimestampMs != nil {
		a.timestamp = C.int64_t(*r.TimestampMs)
	}
	return a
}

// cHeaders is hs as the tg_header pairs of the C ABI. cgo lets C get Go memory that holds Go
// pointers only when those are pinned: the names and values are copied into one buffer, pinned
// with pin (one pin per record, not two per header), and the pairs point into it.
func cHeaders(hs []Header, pin *runtime.Pinner) (*C.tg_header, C.size_t) {
	if len(hs) == 0 {
		return nil, 0
	}
	n := 1 // never an empty buffer: every pair points at a real byte
	for _, h := range hs {
		n += len(h.Name) + len(h.Value)
	}
	buf := make([]byte, n)
	pin.Pin(&buf[0])
	out := make([]C.tg_header, len(hs))
	off := 0
	for i, h := range hs {
		out[i].name = (*C.uint8_t)(unsafe.Pointer(&buf[off]))
		out[i].name_len = C.size_t(copy(buf[off:], h.Name))
		off += len(h.Name)
		out[i].value = (*C.uint8_t)(unsafe.Pointer(&buf[off]))
		out[i].value_len = C.size_t(copy(buf[off:], h.Value))
		off += len(h.Value)
	}
	return &out[0], C.size_t(len(hs))
}

// answer releases w and returns its record's outcome, timed from queued.
func (w *waiter) answer(o Outcome, queued time.Time) (int, Delivery, string) {
	w.release()
	o.Delivery.Acked = time.Since(queued)
	return o.Status, o.Delivery, o.Msg
}

// waiter is what a request waits on: the channel its outcome comes on, the timer of its early
// answer, and the buffer for the core's error message. Pooled, so that a publish allocates none
// of them.
type waiter struct {
	done   chan Outcome
	timer  *time.Timer
	errbuf [errBufLen]C.char
}

var waiters = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &waiter{done: make(chan Outcome, 1), timer: t}
}}

// release stops the timer and returns w to the pool; w.done must be empty and unregistered.
func (w *waiter) release() {
	if !w.timer.Stop() {
		select { // a timer that fired unread (Go before 1.23 semantics keeps its value)
		case <-w.timer.C:
		default:
		}
	}
	waiters.Put(w)
}

// poll hands each completion to the request waiting for it, for the life of the process
// (publishers are never freed: KrakenD CE builds its handlers once).
func (c *corePublisher) poll() {
	var batch [completionBatch]C.tg_completion
	var dones [completionBatch]chan<- Outcome
	defer close(c.polled)
	for !c.closing.Load() {
		var n C.size_t
		st := C.tg_publisher_completions(c.p, &batch[0], completionBatch, &n, pollTimeoutMs)
		if int(st) != 200 {
			// Only a NULL argument gives this; never busy-loop on it.
			logging.Error("collecting publish outcomes failed with status", int(st))
			time.Sleep(time.Second)
			continue
		}
		// One lock for the round's tokens, not one per token: a batch's records complete together.
		c.mu.Lock()
		for i := range int(n) {
			token := uint64(batch[i].token)
			dones[i] = c.waiting[token] // nil if already taken
			delete(c.waiting, token)
		}
		c.mu.Unlock()
		for i := range int(n) {
			cp := &batch[i]
			if dones[i] == nil {
				continue
			}
			o := Outcome{Status: int(cp.status), Token: uint64(cp.token)}
			if o.Status == 200 {
				o.Delivery = Delivery{Partition: int32(cp.delivery.partition), Offset: int64(cp.delivery.offset), Bytes: int(cp.value_len),
					ValueFormat: formatName(int(cp.value_format)), KeyFormat: formatName(int(cp.key_format)), KeyBytes: int(cp.key_len)}
			} else {
				o.Msg = C.GoString(&cp.message[0])
			}
			dones[i] <- o // buffered: never blocks the poller
			dones[i] = nil
		}
	}
}

// Flush waits up to bound for every record queued on the publisher's producer to be delivered
// (tg_publisher_flush): 200, or 504 and why.
func (c *corePublisher) Flush(bound time.Duration) (int, string) {
	var errbuf [errBufLen]C.char
	st := C.tg_publisher_flush(c.p, C.uint32_t(min(bound.Milliseconds(), 1<<31)), &errbuf[0], C.size_t(len(errbuf)))
	if int(st) != 200 {
		return int(st), C.GoString(&errbuf[0])
	}
	return 200, ""
}

// Close ends the poller (within its poll timeout) and frees the publisher. Nothing may use the
// publisher afterwards; outcomes still due are not delivered.
func (c *corePublisher) Close() {
	if c.closing.Swap(true) {
		return
	}
	<-c.polled
	freeReaders(c)
	C.tg_publisher_free(c.p)
	c.p = nil
}

// take unregisters token and returns the channel its request waits on (nil if already taken).
func (c *corePublisher) take(token uint64) chan<- Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := c.waiting[token]
	delete(c.waiting, token)
	return done
}

// bytesPtr points at b's bytes for the duration of a call (the core copies what it
// keeps). An empty slice gets a pointer to a static byte, never NULL.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&zeroByte))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b)))
}

var zeroByte byte

// stringPtr points at s's bytes like bytesPtr, without copying s to a []byte.
func stringPtr(s string) *C.uint8_t {
	if len(s) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&zeroByte))
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s)))
}

var installLogOnce sync.Once

// InstallLog routes the core's log records to package logging (once per process).
func InstallLog() {
	installLogOnce.Do(func() {
		C.topicgate_install_log(coreLogMaxLevel)
	})
}

// MetricsJSON is the core's metrics snapshot (tg_metrics_json), as JSON.
func MetricsJSON() []byte {
	buf := make([]byte, 16<<10)
	for range 4 { // the snapshot may grow between the two calls
		var n C.size_t
		st := C.tg_metrics_json(bytesPtr(buf), C.size_t(len(buf)), &n)
		if int(st) == 200 {
			return buf[:n]
		}
		if int(st) != 413 {
			break
		}
		buf = make([]byte, int(n)+4096)
	}
	return nil
}

// Version is the core's version string.
func Version() string {
	return C.GoString(C.tg_version())
}
