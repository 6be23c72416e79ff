package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// streamFlushBytes: answer lines are written when this many are ready, or when nothing else is.
const streamFlushBytes = 32 << 10

// wantsStream: an NDJSON request that accepts an NDJSON answer is a stream (README "Streams").
func wantsStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == ndjsonType {
				return true
			}
		}
	}
	return false
}

// streamEnd is a stream's last answer line: how it ended. It is told from a record's line by
// having no "line".
type streamEnd struct {
	StatusCode    string `json:"statusCode"`
	Message       string `json:"message"`
	Topic         string `json:"topic"`
	Records       int    `json:"records"`
	Written       int    `json:"written"`
	StoppedAtLine *int   `json:"stoppedAtLine,omitempty"`
}

// streamEntry is a record of a stream from the time it is read until it is answered.
type streamEntry struct {
	line   int    // the line (NDJSON) or record (v3) number
	token  uint64 // the core's token; an entry answered at once carries the token before it
	queued time.Time
	o      outcome
	done   bool
	v3     v3Meta // on a v3 stream, what the record's delivery report states besides o
}

// streamFormat is what one kind of stream reads and answers: NDJSON lines (ndjsonStream, README
// "Streams") or Confluent v3's concatenated produce requests (v3Stream).
type streamFormat interface {
	// read cuts body into records on out, as readStream does.
	read(body io.Reader, bc *batchConfig, out chan<- *streamChunk, stop <-chan struct{})
	// record makes it's record; a status other than 0 refuses it, msg says why.
	record(it streamLine) (rec batchRecord, v3 v3Meta, status int, msg string)
	// answer appends e's answer.
	answer(b []byte, e *streamEntry) []byte
	// end writes what ends the answer, for how sr ended.
	end(sr *streamRun)
}

// streamRun is one stream's state: its records in order, from the oldest unanswered on.
type streamRun struct {
	bc       *batchConfig
	topic    string
	format   streamFormat
	goesOn   bool // a failed record does not stop the stream
	s        recordStream
	m        *topicMetrics
	out      *streamWriter
	pending  []streamEntry
	head     int // pending[:head] are answered and written
	inFlight int
	last     uint64 // the last token queued
	records  int    // answered
	written  int
	answered []outcome // reused: a round's outcomes, for the metrics

	// Where and why the stream stopped early (stopStatus 0: it did not).
	stopStatus int
	stopLine   int
	stopMsg    string
}

// serveStream answers an NDJSON request that accepts an NDJSON answer: records are produced as
// their lines arrive, and the answer streams one line per record in order, then a streamEnd
// line (runStream). A failed record stops the stream; with batch.partial it goes on past it.
func (h *publishHandler) serveStream(w http.ResponseWriter, r *http.Request, rc *routeConfig, topic string, m *topicMetrics, fail func(int, string)) {
	const plain = "; send the batch without Accept: " + ndjsonType
	if msg := h.streamRefusal(&rc.Batch); msg != "" {
		fail(http.StatusNotAcceptable, msg+plain)
		return
	}
	headersJSON, key, err := h.requestHeaders(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	conn, err := openStreamConn(w, r, ndjsonType+"; charset=utf-8")
	if err != nil {
		fail(http.StatusNotAcceptable, err.Error()+plain)
		return
	}
	runStream(conn, &rc.Batch, topic, m, h.pub, &ndjsonStream{h: h, r: r, bc: &rc.Batch, key: key, headers: headersJSON}, rc.Batch.Partial)
}

// streamRefusal says why rc's batch config cannot stream ("" when it can).
func (h *publishHandler) streamRefusal(bc *batchConfig) string {
	switch {
	case !h.streams:
		return "streams need the http-server mounting: KrakenD buffers a backend's whole answer"
	case bc.MaxRecords == 0 || bc.StreamInFlight == 0:
		return "streams are off for this route (batch.stream.in_flight or batch.max_records is 0)"
	case bc.Atomic:
		return "an all-or-nothing route (batch.atomic) takes whole batches, not streams"
	}
	return ""
}

// runStream produces a stream's records as they arrive on conn, at most batch.stream.in_flight
// of them unanswered (reading waits), and streams their answers in order. A failed record stops
// the stream unless goesOn; so do a read error and a client idle for batch.stream.idle_timeout_ms.
// Records answered before a stop stay as answered.
func runStream(conn streamConn, bc *batchConfig, topic string, m *topicMetrics, pub publisher, f streamFormat, goesOn bool) {
	// The reader ends at stop, or at its read's deadline. No earlier: net/http reads on after the
	// handler, looking for the body's end, and a connection closed with unread input is reset,
	// losing the answer; a failed read there would do just that.
	chunks := make(chan *streamChunk, streamChunksQueued)
	stop, readerDone := make(chan struct{}), make(chan struct{})
	defer close(stop)
	go func() {
		defer close(readerDone)
		f.read(&idleReader{c: conn, idle: bc.StreamIdle, m: m}, bc, chunks, stop)
	}()

	sr := &streamRun{bc: bc, topic: topic, m: m, format: f, goesOn: goesOn,
		s:   pub.openStream(topic, bc.StreamInFlight+streamChunkLines),
		out: &streamWriter{c: conn, idle: bc.StreamIdle}}
	defer conn.end(readerDone)
	for reading := true; reading || sr.inFlight > 0; {
		var in <-chan *streamChunk
		if reading && sr.inFlight < bc.StreamInFlight {
			in = chunks // else backpressure: the reader fills its queue and stops reading
		}
		if len(in) == 0 && len(sr.s.outcomes()) == 0 {
			sr.out.flush() // about to wait: send what is ready
		}
		select {
		case c := <-in:
			reading = sr.take(c)
			c.release()
		case o := <-sr.s.outcomes():
			sr.settle(o)
		}
		sr.emit()
		if sr.stopStatus != 0 {
			reading = false
		}
		if sr.out.err != nil && reading {
			reading = false // the client is gone; the records in flight are still answered (metrics, log)
			logOutcome(http.StatusBadRequest, topic, "a stream's client stopped reading its answer: "+sr.out.err.Error())
		}
	}
	sr.format.end(sr)
	sr.out.flush()
}

// take produces c's records in order; false when the stream reads no further.
func (sr *streamRun) take(c *streamChunk) bool {
	now := time.Now()
	for _, ln := range c.lines {
		rec, v3, status, msg := sr.format.record(ln)
		if status == 0 {
			token, st, m := sr.s.start(rec)
			if st == http.StatusOK {
				sr.pending = append(sr.pending, streamEntry{line: ln.n, token: token, queued: now, v3: v3})
				sr.inFlight++
				sr.last = token
				continue
			}
			status, msg = coreStatus(st, m)
		}
		sr.pending = append(sr.pending, streamEntry{line: ln.n, token: sr.last, done: true, o: outcome{status: status, msg: msg}, v3: v3})
		if !sr.goesOn {
			sr.stopAt(ln.n, status, msg)
			return false
		}
	}
	var re *streamReadError
	switch {
	case c.err == nil:
		return true
	case c.err == io.EOF:
	case errors.As(c.err, &re):
		sr.stopAt(c.next, re.status, re.msg)
	case c.err == errIdle:
		sr.stopAt(c.next, http.StatusRequestTimeout,
			fmt.Sprintf("the client sent nothing for %s (batch.stream.idle_timeout_ms); the stream was cut", sr.bc.StreamIdle))
	default:
		sr.stopAt(c.next, http.StatusBadRequest, "cannot read the request body: "+c.err.Error())
	}
	return false
}

// settle records a queued record's outcome.
func (sr *streamRun) settle(o outcome) {
	p := sr.pending[sr.head:]
	i := sort.Search(len(p), func(i int) bool { return p[i].token >= o.token })
	if i == len(p) || p[i].token != o.token || p[i].done {
		logError("a stream got an outcome for a token it does not wait for:", o.token)
		return
	}
	e := &p[i]
	o.status, o.msg = coreStatus(o.status, o.msg)
	o.d.Acked = time.Since(e.queued)
	e.o, e.done = o, true
	sr.inFlight--
	// Outcomes come in the broker's order: the stream stopped at the earliest line that failed.
	if o.status != http.StatusOK && !sr.goesOn && (sr.stopStatus == 0 || e.line < sr.stopLine) {
		sr.stopAt(e.line, o.status, o.msg)
	}
}

// emit writes the answers that are next in order.
func (sr *streamRun) emit() {
	sr.answered = sr.answered[:0]
	for sr.head < len(sr.pending) && sr.pending[sr.head].done {
		e := &sr.pending[sr.head]
		sr.out.answer(sr.format, e)
		sr.answered = append(sr.answered, e.o)
		sr.records++
		if e.o.status == http.StatusOK {
			sr.written++
		}
		sr.head++
	}
	sr.m.batchRecords(sr.answered)
	if sr.head > 4096 && 2*sr.head > len(sr.pending) { // keep the queue from growing with the stream
		sr.pending = sr.pending[:copy(sr.pending, sr.pending[sr.head:])]
		sr.head = 0
	}
}

func (sr *streamRun) stopAt(line, status int, msg string) {
	sr.stopLine, sr.stopStatus, sr.stopMsg = line, status, msg
}

// ndjsonStream is an NDJSON stream: a record per line, its answer line in batchResult's shape,
// and a streamEnd line last.
type ndjsonStream struct {
	h            *publishHandler
	r            *http.Request
	bc           *batchConfig
	key, headers []byte // the request's, for records without their own
}

func (f *ndjsonStream) read(body io.Reader, bc *batchConfig, out chan<- *streamChunk, stop <-chan struct{}) {
	readStream(body, bc.MaxLineBytes, bc.Partial, out, stop)
}

func (f *ndjsonStream) record(it streamLine) (batchRecord, v3Meta, int, string) {
	if it.tooLong {
		return batchRecord{}, v3Meta{}, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the line is larger than the limit of %d bytes (batch.max_line_bytes)", f.bc.MaxLineBytes)
	}
	rec, status, msg := f.h.record(f.r, it.text, f.bc, f.headers, f.key)
	return rec, v3Meta{}, status, msg
}

func (f *ndjsonStream) answer(b []byte, e *streamEntry) []byte {
	return append(appendRecordResult(b, e.line, e.o), '\n')
}

// end writes the streamEnd line.
func (f *ndjsonStream) end(sr *streamRun) {
	end := streamEnd{Topic: sr.topic, Records: sr.records, Written: sr.written}
	status := http.StatusOK
	switch {
	case sr.stopStatus != 0:
		status = sr.stopStatus
		end.StoppedAtLine = &sr.stopLine
		end.Message = fmt.Sprintf("the stream stopped at line %d: %s; every line answered above stays as answered, no later line was produced", sr.stopLine, sr.stopMsg)
	case sr.records == 0:
		status, end.Message = http.StatusBadRequest, "the request body has no records; send one JSON object per line"
	case sr.written < sr.records:
		status, end.Message = http.StatusMultiStatus, fmt.Sprintf("%d of %d records written", sr.written, sr.records)
	default:
		end.Message = "ok"
	}
	end.StatusCode = strconv.Itoa(status)
	if status != http.StatusOK {
		logOutcome(status, sr.topic, end.Message)
	}
	b, _ := json.Marshal(end) // plain strings and numbers: cannot fail
	sr.out.add(append(b, '\n'))
}

// streamReadError ends a stream's reading with an answer of its own: status and msg.
type streamReadError struct {
	status int
	msg    string
}

func (e *streamReadError) Error() string { return e.msg }

// coreStatus maps a core status to its HTTP status, explaining an unknown one.
func coreStatus(st int, msg string) (int, string) {
	status, known := httpStatus(st)
	if !known {
		msg = fmt.Sprintf("the core answered an unknown status %d: %s", st, msg)
	}
	return status, msg
}

// streamWriter writes a stream's answer lines, the header before the first, each write bounded
// by the idle timeout (a client that reads nothing is cut like one that sends nothing).
type streamWriter struct {
	c       streamConn
	idle    time.Duration
	buf     []byte
	started bool
	err     error // the first failed write: nothing more is written
}

// answer adds record e's answer in f's format.
func (sw *streamWriter) answer(f streamFormat, e *streamEntry) {
	sw.buf = f.answer(sw.buf, e)
	if len(sw.buf) >= streamFlushBytes {
		sw.flush()
	}
}

// add adds b as it is.
func (sw *streamWriter) add(b []byte) {
	sw.buf = append(sw.buf, b...)
}

// flush sends the lines added so far.
func (sw *streamWriter) flush() {
	if sw.err != nil || (len(sw.buf) == 0 && sw.started) {
		sw.buf = sw.buf[:0]
		return
	}
	if !sw.started {
		sw.c.begin()
		sw.started = true
	}
	_ = sw.c.setWriteDeadline(time.Now().Add(sw.idle))
	sw.err = sw.c.send(sw.buf)
	sw.buf = sw.buf[:0]
}
