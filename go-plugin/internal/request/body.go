package request

import (
	"io"
	"net/http"
	"sync"

	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
)

// Request bodies are read into buffers reused across requests: the core copies what it keeps
// before tg_publish_start returns, so a body is garbage once its publish call is back. Under
// load this takes a body's allocations (and their share of the garbage collector's work) off
// every request.
const (
	bodyBufInitial = 4 << 10 // a new buffer's capacity
	// Larger buffers are left to the garbage collector, not kept. A batch of 100 1 KB records
	// fits: its body grown from 4 KB and dropped on every request was ~15% of a batch's CPU.
	bodyBufKeepMax = 1 << 20
	// At most this much is allocated for an announced length before its bytes arrive, so that a
	// client that announces much and sends little makes the gateway hold little.
	bodyBufPresizeMax = 256 << 10
)

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, bodyBufInitial); return &b }}

// readBody reads r to its end, or to limit+1 bytes so that the caller can tell an over-limit
// body. size is the body's announced length (-1: unknown): up to bodyBufPresizeMax, the buffer
// takes it in one allocation, not by growing. The caller hands buf back with Release once nothing
// uses the bytes any more.
func readBody(r io.Reader, size, limit int64) (buf *[]byte, err error) {
	buf = bodyBufs.Get().(*[]byte)
	b := (*buf)[:0]
	if size = min(size, bodyBufPresizeMax); int64(cap(b)) <= size { // +1: room to see the end without growing
		b = make([]byte, 0, size+1)
	}
	lr := io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow as append does
		}
		var n int
		n, err = lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			*buf = b
			if err == io.EOF {
				err = nil
			}
			return buf, err
		}
	}
}

// Release returns a buffer from Body (or readBody) for reuse (nil: nothing to return).
func Release(buf *[]byte) {
	if buf != nil && cap(*buf) <= bodyBufKeepMax {
		*buf = (*buf)[:0]
		bodyBufs.Put(buf)
	}
}

// Body reads r's body, at most limit bytes (from Content-Length before reading, else after
// reading limit+1), and counts its bytes in m. A status other than 0 refuses the request: 413 with
// tooLarge(limit), or 400 for a body that cannot be read. The caller hands buf back with
// Release (nil-safe) once the core has copied what it keeps.
func Body(r *http.Request, limit int64, tooLarge func(int64) string, m *metrics.Topic) (body []byte, buf *[]byte, status int, msg string) {
	if r.ContentLength > limit {
		return nil, nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	if r.Body != nil {
		var err error
		if buf, err = readBody(r.Body, r.ContentLength, limit); err != nil {
			return nil, buf, http.StatusBadRequest, "cannot read the request body: " + err.Error()
		}
		body = *buf
		m.ReadBytes(len(body))
	}
	if int64(len(body)) > limit {
		return nil, buf, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	return body, buf, 0, ""
}
