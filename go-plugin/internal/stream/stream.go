// Package stream produces a request's records as its body arrives and streams their answers back
// in order: NDJSON streams (README "Streams"), and the machinery Confluent's streaming mode uses.
package stream

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

	"github.com/topicgate/topicgate/go-plugin/internal/batch"
	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
	"github.com/topicgate/topicgate/go-plugin/internal/shutdown"
)

// streamFlushBytes: answer lines are written when this many are ready, or when nothing else is.
const streamFlushBytes = 32 << 10

// Wanted: an NDJSON request that accepts an NDJSON answer is a stream (README "Streams").
func Wanted(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == request.NDJSON {
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

// Entry is a record of a stream from the time it is read until it is answered.
type Entry[M any] struct {
	Line    int // the line (NDJSON) or record (v3) number
	Outcome core.Outcome
	Meta    M // what the format's answer states besides the outcome (a v3 delivery report's key, timestamp)

	token  uint64 // the core's token; an entry answered at once carries the token before it
	queued time.Time
	done   bool
}

// Format is what one kind of stream reads and answers: NDJSON lines (ndjsonStream, README
// "Streams") or Confluent v3's concatenated produce requests (package confluent). M is what a
// record's answer needs besides its outcome.
type Format[M any] interface {
	// Read cuts body into records on out, as readStream does.
	Read(body io.Reader, bc *config.Batch, out chan<- *Chunk, stop <-chan struct{})
	// Record makes the record of it; a status other than 0 refuses it, msg says why.
	Record(it Line) (rec core.Record, meta M, status int, msg string)
	// Answer appends e's answer.
	Answer(b []byte, e *Entry[M]) []byte
	// End is what ends the answer (nil: nothing), for how the stream ended.
	End(s Summary) []byte
}

// Summary is how a stream ended: its records, and where and why it stopped early (StopStatus 0:
// it did not).
type Summary struct {
	Topic      string
	Records    int // answered
	Written    int
	StopStatus int
	StopLine   int
	StopMsg    string
}

// streamRun is one stream's state: its records in order, from the oldest unanswered on.
type streamRun[M any] struct {
	bc       *config.Batch
	topic    string
	format   Format[M]
	goesOn   bool // a failed record does not stop the stream
	s        core.Stream
	m        *metrics.Topic
	out      *streamWriter
	pending  []Entry[M]
	head     int // pending[:head] are answered and written
	inFlight int
	last     uint64 // the last token queued
	next     int    // the number of the first line not yet taken
	records  int    // answered
	written  int
	answered []core.Outcome // reused: a round's outcomes, for the metrics

	// Where and why the stream stopped early (stopStatus 0: it did not).
	stopStatus int
	stopLine   int
	stopMsg    string
}

// Serve answers an NDJSON request that accepts an NDJSON answer: records are produced as
// their lines arrive, and the answer streams one line per record in order, then a streamEnd
// line (Run). A failed record stops the stream; with batch.partial it goes on past it.
func Serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route, topic string, m *metrics.Topic, fail func(int, string)) {
	const plain = "; send the batch without Accept: " + request.NDJSON
	if msg := Refusal(o, &rc.Batch); msg != "" {
		fail(http.StatusNotAcceptable, msg+plain)
		return
	}
	headers, key, err := o.Headers(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	conn, err := OpenConn(w, r, request.NDJSON+"; charset=utf-8")
	if err != nil {
		fail(http.StatusNotAcceptable, err.Error()+plain)
		return
	}
	Run[struct{}](conn, &rc.Batch, topic, m, o.Pub, &ndjsonStream{r: r, bc: &rc.Batch, o: o, key: key, headers: headers}, rc.Batch.Partial)
}

// Refusal says why bc cannot stream under o ("" when it can).
func Refusal(o *request.Options, bc *config.Batch) string {
	switch {
	case !o.Streams:
		return "streams need the http-server mounting: KrakenD buffers a backend's whole answer"
	case bc.MaxRecords == 0 || bc.StreamInFlight == 0:
		return "streams are off for this route (batch.stream.in_flight or batch.max_records is 0)"
	case bc.Atomic:
		return "an all-or-nothing route (batch.atomic) takes whole batches, not streams"
	}
	return ""
}

// Run produces a stream's records as they arrive on conn, at most batch.stream.in_flight
// of them unanswered (reading waits), and streams their answers in order. A failed record stops
// the stream unless goesOn; so do a read error and a client idle for batch.stream.idle_timeout_ms.
// Records answered before a stop stay as answered.
func Run[M any](conn Conn, bc *config.Batch, topic string, m *metrics.Topic, pub core.Publisher, f Format[M], goesOn bool) {
	// The reader ends at stop, or at its read's deadline. No earlier: net/http reads on after the
	// handler, looking for the body's end, and a connection closed with unread input is reset,
	// losing the answer; a failed read there would do just that.
	chunks := make(chan *Chunk, streamChunksQueued)
	stop, readerDone := make(chan struct{}), make(chan struct{})
	defer close(stop)
	go func() {
		defer close(readerDone)
		f.Read(&idleReader{c: conn, idle: bc.StreamIdle, m: m}, bc, chunks, stop)
	}()

	sr := &streamRun[M]{bc: bc, topic: topic, m: m, format: f, goesOn: goesOn, next: 1,
		s:   pub.OpenStream(topic, bc.StreamInFlight+streamChunkLines),
		out: &streamWriter{c: conn, idle: bc.StreamIdle}}
	defer conn.end(readerDone)
	stopping := shutdown.Stopping()
	for reading := true; reading || sr.inFlight > 0; {
		var in <-chan *Chunk
		if reading && sr.inFlight < bc.StreamInFlight {
			in = chunks // else backpressure: the reader fills its queue and stops reading
		}
		if len(in) == 0 && len(sr.s.Outcomes()) == 0 {
			sr.out.flush() // about to wait: send what is ready
		}
		select {
		case c := <-in:
			reading = sr.take(c)
			c.release()
		case o := <-sr.s.Outcomes():
			sr.settle(o)
		case <-stopping:
			// The gateway shuts down: read no further; the records in flight are still answered,
			// then the last line says where the stream stopped.
			stopping = nil
			if reading && sr.stopStatus == 0 {
				sr.stopAt(sr.next, http.StatusServiceUnavailable, shuttingDown)
			}
			reading = false
		}
		sr.emit()
		if sr.stopStatus != 0 {
			reading = false
		}
		if sr.out.err != nil && reading {
			reading = false // the client is gone; the records in flight are still answered (metrics, log)
			logging.Access(http.StatusBadRequest, topic, "a stream's client stopped reading its answer: "+sr.out.err.Error())
		}
	}
	sr.out.add(sr.format.End(Summary{Topic: sr.topic, Records: sr.records, Written: sr.written,
		StopStatus: sr.stopStatus, StopLine: sr.stopLine, StopMsg: sr.stopMsg}))
	sr.out.flush()
}

// shuttingDown is why a stream stopped at the gateway's shutdown.
const shuttingDown = "the gateway is shutting down; send the rest to another instance"

// take produces c's records in order; false when the stream reads no further.
func (sr *streamRun[M]) take(c *Chunk) bool {
	now := time.Now()
	sr.next = c.next
	for _, ln := range c.lines {
		rec, meta, status, msg := sr.format.Record(ln)
		if status == 0 {
			token, st, m := sr.s.Start(rec)
			if st == http.StatusOK {
				sr.pending = append(sr.pending, Entry[M]{Line: ln.N, token: token, queued: now, Meta: meta})
				sr.inFlight++
				sr.last = token
				continue
			}
			status, msg = respond.CoreStatus(st, m)
		}
		sr.pending = append(sr.pending, Entry[M]{Line: ln.N, token: sr.last, done: true, Outcome: core.Outcome{Status: status, Msg: msg}, Meta: meta})
		if !sr.goesOn {
			sr.stopAt(ln.N, status, msg)
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
func (sr *streamRun[M]) settle(o core.Outcome) {
	p := sr.pending[sr.head:]
	i := sort.Search(len(p), func(i int) bool { return p[i].token >= o.Token })
	if i == len(p) || p[i].token != o.Token || p[i].done {
		logging.Error("a stream got an outcome for a token it does not wait for:", o.Token)
		return
	}
	e := &p[i]
	o.Status, o.Msg = respond.CoreStatus(o.Status, o.Msg)
	o.Delivery.Acked = time.Since(e.queued)
	e.Outcome, e.done = o, true
	sr.inFlight--
	// Outcomes come in the broker's order: the stream stopped at the earliest line that failed.
	if o.Status != http.StatusOK && !sr.goesOn && (sr.stopStatus == 0 || e.Line < sr.stopLine) {
		sr.stopAt(e.Line, o.Status, o.Msg)
	}
}

// emit writes the answers that are next in order.
func (sr *streamRun[M]) emit() {
	sr.answered = sr.answered[:0]
	for sr.head < len(sr.pending) && sr.pending[sr.head].done {
		e := &sr.pending[sr.head]
		sr.out.buf = sr.format.Answer(sr.out.buf, e)
		sr.out.flushIfFull()
		sr.answered = append(sr.answered, e.Outcome)
		sr.records++
		if e.Outcome.Status == http.StatusOK {
			sr.written++
		}
		sr.head++
	}
	sr.m.BatchRecords(sr.answered)
	if sr.head > 4096 && 2*sr.head > len(sr.pending) { // keep the queue from growing with the stream
		sr.pending = sr.pending[:copy(sr.pending, sr.pending[sr.head:])]
		sr.head = 0
	}
}

func (sr *streamRun[M]) stopAt(line, status int, msg string) {
	sr.stopLine, sr.stopStatus, sr.stopMsg = line, status, msg
}

// ndjsonStream is an NDJSON stream: a record per line, its answer line in a batch result's shape,
// and a streamEnd line last.
type ndjsonStream struct {
	r       *http.Request
	bc      *config.Batch
	o       *request.Options // its trace context setting and whether keys are JSON
	key     []byte           // the request's, for records without their own
	headers []core.Header    // the request's, for records without their own
}

func (f *ndjsonStream) Read(body io.Reader, bc *config.Batch, out chan<- *Chunk, stop <-chan struct{}) {
	readStream(body, bc.MaxLineBytes, bc.Partial, out, stop)
}

func (f *ndjsonStream) Record(it Line) (core.Record, struct{}, int, string) {
	if it.TooLong {
		return core.Record{}, struct{}{}, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the line is larger than the limit of %d bytes (batch.max_line_bytes)", f.bc.MaxLineBytes)
	}
	rec, status, msg := batch.Record(f.r, it.Text, f.bc, f.o, f.headers, f.key)
	return rec, struct{}{}, status, msg
}

func (f *ndjsonStream) Answer(b []byte, e *Entry[struct{}]) []byte {
	return append(batch.AppendResult(b, e.Line, e.Outcome), '\n')
}

// End is the streamEnd line.
func (f *ndjsonStream) End(s Summary) []byte {
	end := streamEnd{Topic: s.Topic, Records: s.Records, Written: s.Written}
	status := http.StatusOK
	switch {
	case s.StopStatus != 0:
		status = s.StopStatus
		end.StoppedAtLine = &s.StopLine
		end.Message = fmt.Sprintf("the stream stopped at line %d: %s; every line answered stays as answered; no line after the last answer was produced", s.StopLine, s.StopMsg)
	case s.Records == 0:
		status, end.Message = http.StatusBadRequest, "the request body has no records; send one JSON object per line"
	case s.Written < s.Records:
		status, end.Message = http.StatusMultiStatus, fmt.Sprintf("%d of %d records written", s.Written, s.Records)
	default:
		end.Message = "ok"
	}
	end.StatusCode = strconv.Itoa(status)
	if status != http.StatusOK {
		logging.Access(status, s.Topic, end.Message)
	}
	b, _ := json.Marshal(end) // plain strings and numbers: cannot fail
	return append(b, '\n')
}

// streamReadError ends a stream's reading with an answer of its own: status and msg.
type streamReadError struct {
	status int
	msg    string
}

func (e *streamReadError) Error() string { return e.msg }

// streamWriter writes a stream's answer lines, the header before the first, each write bounded
// by the idle timeout (a client that reads nothing is cut like one that sends nothing).
type streamWriter struct {
	c       Conn
	idle    time.Duration
	buf     []byte
	started bool
	err     error // the first failed write: nothing more is written
}

// flushIfFull sends the lines added so far once streamFlushBytes of them are ready.
func (sw *streamWriter) flushIfFull() {
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
