package stream

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
)

// A streamed body is cut into chunks of lines as it arrives: a chunk ends at streamChunkLines
// lines, streamChunkBytes bytes, or when no more input is buffered, so that records go out
// without waiting for the next packet.
const (
	streamChunkLines = 256
	streamChunkBytes = 256 << 10
	streamReadBuf    = 64 << 10
	// streamChunksQueued chunks may wait between the reader and the producer; with the records in
	// flight this bounds a stream's memory.
	streamChunksQueued = 2
)

// Line is one non-blank line (or value) of a stream: its 1-based number and its text, or none for
// one over the limit (TooLong: it was skipped, not kept).
type Line struct {
	N       int
	Text    []byte
	TooLong bool
}

// Chunk is a run of lines; err ends the stream after them (io.EOF: the body's end).
type Chunk struct {
	lines []Line
	buf   []byte // holds the lines' text
	err   error
	next  int // the number the line after these would have
}

var streamChunks = sync.Pool{New: func() any {
	return &Chunk{lines: make([]Line, 0, streamChunkLines), buf: make([]byte, 0, streamChunkBytes)}
}}

// release hands c back for reuse; its lines' text is gone after this.
func (c *Chunk) release() {
	if cap(c.buf) > 4*streamChunkBytes { // grown by a long line: let the collector have it
		c.buf = make([]byte, 0, streamChunkBytes)
	}
	c.lines, c.buf, c.err, c.next = c.lines[:0], c.buf[:0], nil, 0
	streamChunks.Put(c)
}

// errIdle is the read error of a stream whose client sent nothing for the idle timeout.
var errIdle = errors.New("idle")

// idleReader reads a stream's body, each read bounded by the idle timeout through the
// connection's read deadline, and counts the bytes in m.
type idleReader struct {
	c    Conn
	idle time.Duration
	m    *metrics.Topic
}

func (ir *idleReader) Read(p []byte) (int, error) {
	_ = ir.c.setReadDeadline(time.Now().Add(ir.idle))
	n, err := ir.c.body().Read(p)
	ir.m.ReadBytes(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = errIdle
	}
	return n, err
}

// errLineTooLong ends the reading of a stream at a line over the limit, when skipLong is false.
var errLineTooLong = errors.New("a line is over the limit")

// readStream reads body line by line into chunks sent on out, until the body ends, a read fails
// or stop is closed. maxLine bounds a line: one over it is read to its end and reported when
// skipLong, else reported at once and the reading ends (a 100 MB line is not read in vain). It
// closes nothing; the last chunk sent has err set.
func readStream(body io.Reader, maxLine int64, skipLong bool, out chan<- *Chunk, stop <-chan struct{}) {
	br := bufio.NewReaderSize(body, streamReadBuf)
	n := 0
	for {
		c := streamChunks.Get().(*Chunk)
		for len(c.lines) < streamChunkLines && len(c.buf) < streamChunkBytes {
			select {
			case <-stop:
				c.release()
				return
			default:
			}
			start := len(c.buf)
			var size int64
			var err error
			c.buf, size, err = appendLine(br, c.buf, maxLine, skipLong)
			if err != nil && err != io.EOF { // a line cut by a failed read is no record
				c.buf, c.err = c.buf[:start], err
				break
			}
			n++
			if size > maxLine {
				c.lines = append(c.lines, Line{N: n, TooLong: true})
				if !skipLong && err == nil {
					err = errLineTooLong
				}
			} else if len(bytes.TrimSpace(c.buf[start:])) > 0 {
				c.lines = append(c.lines, Line{N: n, Text: c.buf[start:]})
			} else {
				c.buf = c.buf[:start] // a blank line: no record
			}
			if err != nil {
				c.err = err
				break
			}
			if br.Buffered() == 0 {
				break
			}
		}
		if !sendChunk(c, n+1, out, stop) {
			return
		}
	}
}

// appendLine appends the next line of br to buf, without its "\n" or "\r\n", and returns its size
// in bytes. A line over maxLine is not kept (buf unchanged, size > maxLine; then size may count
// the line's end too), and is read to its end only when skipLong. err is the read error that
// ended the line (io.EOF after the last line).
func appendLine(br *bufio.Reader, buf []byte, maxLine int64, skipLong bool) ([]byte, int64, error) {
	start := len(buf)
	var size int64 // the line's bytes so far, its end included
	for {
		frag, err := br.ReadSlice('\n')
		size += int64(len(frag))
		if size <= maxLine+2 { // beyond the limit and room for "\r\n", stop keeping it
			buf = append(buf, frag...)
		}
		if errors.Is(err, bufio.ErrBufferFull) && (skipLong || size <= maxLine+2) {
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			err = nil // the reading ends here: the caller is told the line is too long
		}
		if size > maxLine+2 {
			return buf[:start], size, err
		}
		line := bytes.TrimSuffix(bytes.TrimSuffix(buf[start:], []byte{'\n'}), []byte{'\r'})
		if int64(len(line)) > maxLine {
			return buf[:start], int64(len(line)), err
		}
		return buf[:start+len(line)], int64(len(line)), err
	}
}

// ReadValues reads body as concatenated JSON values (Confluent's streaming format) into chunks
// on out, as readStream reads lines: a chunk ends at streamChunkLines values, streamChunkBytes
// bytes, or where no further input is buffered. A value over maxValue bytes is reported (TooLong)
// when whole; one still unfinished after maxValue bytes ends the reading with 413, malformed JSON
// with 400 (a streamReadError each), so that neither is read in vain. It closes nothing; the last
// chunk sent has err set.
func ReadValues(body io.Reader, maxValue int64, out chan<- *Chunk, stop <-chan struct{}) {
	lim := &valueLimit{r: body, max: maxValue}
	dec := json.NewDecoder(lim)
	lim.dec = dec
	n := 0
	for {
		c := streamChunks.Get().(*Chunk)
		for len(c.lines) < streamChunkLines && len(c.buf) < streamChunkBytes {
			select {
			case <-stop:
				c.release()
				return
			default:
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				c.err = valuesError(err, n+1, maxValue)
				break
			}
			n++
			if int64(len(v)) > maxValue {
				c.lines = append(c.lines, Line{N: n, TooLong: true})
			} else {
				start := len(c.buf)
				c.buf = append(c.buf, v...)
				c.lines = append(c.lines, Line{N: n, Text: c.buf[start:]})
			}
			if onlySpace(dec.Buffered()) {
				break // the next value has not arrived: send these first
			}
		}
		if !sendChunk(c, n+1, out, stop) {
			return
		}
	}
}

// sendChunk hands c, its records numbered below next, to the receiver; false when the reading
// ends here (c carries the last error, or stop is closed).
func sendChunk(c *Chunk, next int, out chan<- *Chunk, stop <-chan struct{}) bool {
	c.next = next
	last := c.err != nil // c is the receiver's once sent
	select {
	case out <- c:
	case <-stop:
		c.release()
		return false
	}
	return !last
}

// errValueTooLong: the value being read is over the limit before its end.
var errValueTooLong = errors.New("a value is over the limit")

// valuesError is how a value's read error ends the stream: at record n, 413 for one over the
// limit, 400 for malformed JSON; a read error (the client's idle timeout, io.EOF) as it is.
func valuesError(err error, n int, maxValue int64) error {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, errValueTooLong):
		return &streamReadError{http.StatusRequestEntityTooLarge, fmt.Sprintf("record %d is larger than the limit of %d bytes (batch.max_line_bytes)", n, maxValue)}
	case errors.As(err, &syntax):
		return &streamReadError{http.StatusBadRequest, fmt.Sprintf("record %d is not JSON: %v", n, err)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &streamReadError{http.StatusBadRequest, fmt.Sprintf("record %d is cut short: the request body ended inside it", n)}
	}
	return err
}

// valueLimit fails a read once the decoder holds more than max bytes (and a read's worth) of
// one unfinished value, so that a huge value is refused after max bytes, not read into memory.
type valueLimit struct {
	r    io.Reader
	dec  *json.Decoder
	read int64
	max  int64
}

func (l *valueLimit) Read(p []byte) (int, error) {
	if l.read-l.dec.InputOffset() > l.max+streamReadBuf {
		return 0, errValueTooLong
	}
	if len(p) > streamReadBuf {
		p = p[:streamReadBuf]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	return n, err
}

// onlySpace reports whether r holds nothing but JSON whitespace.
func onlySpace(r io.Reader) bool {
	var b [1]byte
	for {
		if n, _ := r.Read(b[:]); n == 0 {
			return true
		}
		switch b[0] {
		case ' ', '\t', '\r', '\n':
		default:
			return false
		}
	}
}
