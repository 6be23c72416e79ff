package request

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/topicgate/topicgate/go-plugin/internal/budget"
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

// Buf is a request body read by Body: its pooled buffer and the bytes of the body budget it holds.
type Buf struct {
	b    []byte
	held int64 // of budget.Bodies (or the budget readBody was given)
	bud  *budget.Budget
}

var bodyBufs = sync.Pool{New: func() any { return &Buf{b: make([]byte, 0, bodyBufInitial)} }}

// overBudget stops reading a body that the budget has no room for (budget.Busy or TooLarge).
type overBudget struct{ why budget.Refusal }

func (e overBudget) Error() string { return "over the buffered body budget" }

// readBody reads r to its end, or to limit+1 bytes so that the caller can tell an over-limit
// body. size is the body's announced length (-1 or 0: unknown): up to bodyBufPresizeMax, the
// buffer takes it in one allocation, not by growing. bud (nil: none) is reserved before reading
// for an announced length, else as bytes arrive; over it, reading stops with an overBudget error.
// The caller hands buf back with Release once nothing uses the bytes any more.
func readBody(r io.Reader, size, limit int64, bud *budget.Budget) (buf *Buf, err error) {
	buf = bodyBufs.Get().(*Buf)
	buf.bud = bud
	if bud != nil && size > 0 {
		if why := bud.Take(0, size); why != budget.Taken {
			return buf, overBudget{why}
		}
		buf.held = size
	}
	b := buf.b[:0]
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
		if more := int64(len(b)) - buf.held; bud != nil && more > 0 { // unannounced, or more than announced
			if why := bud.Take(buf.held, more); why != budget.Taken {
				buf.b = b
				return buf, overBudget{why}
			}
			buf.held += more
		}
		if err != nil {
			buf.b = b
			if err == io.EOF {
				err = nil
			}
			return buf, err
		}
	}
}

// Release hands back a buffer from Body (or readBody) and its share of the budget (nil: nothing to
// return).
func Release(buf *Buf) {
	if buf == nil {
		return
	}
	if buf.bud != nil {
		buf.bud.Give(buf.held)
	}
	buf.held, buf.bud = 0, nil
	if cap(buf.b) <= bodyBufKeepMax {
		buf.b = buf.b[:0]
		bodyBufs.Put(buf)
	}
}

// Body reads r's body, at most limit bytes (from Content-Length before reading, else after
// reading limit+1), and counts its bytes in m. It holds its bytes of budget.Bodies until Release.
// A status other than 0 refuses the request: 413 with tooLarge(limit), 503 while other requests
// hold the budget, 413 for a body larger than the whole budget, or 400 for a body that cannot be
// read. The caller hands buf back with Release (nil-safe) once the core has copied what it keeps.
func Body(r *http.Request, limit int64, tooLarge func(int64) string, m *metrics.Topic) (body []byte, buf *Buf, status int, msg string) {
	if r.ContentLength > limit {
		return nil, nil, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	if r.Body != nil {
		var err error
		buf, err = readBody(r.Body, r.ContentLength, limit, budget.Bodies)
		var over overBudget
		switch {
		case err == nil:
		case errors.As(err, &over) && over.why == budget.Busy:
			return nil, buf, http.StatusServiceUnavailable, busyMessage(budget.Bodies.Limit())
		case over.why == budget.TooLarge:
			return nil, buf, http.StatusRequestEntityTooLarge, overBudgetMessage(budget.Bodies.Limit())
		default:
			return nil, buf, http.StatusBadRequest, "cannot read the request body: " + err.Error()
		}
		body = buf.b
		m.ReadBytes(len(body))
	}
	if int64(len(body)) > limit {
		return nil, buf, http.StatusRequestEntityTooLarge, tooLarge(limit)
	}
	return body, buf, 0, ""
}

// busyMessage is the message of a 503 for a body that does not fit the budget now.
func busyMessage(limit int64) string {
	return fmt.Sprintf("the request bodies the gateway holds leave no room for this one under its limit of %d bytes (max_buffered_body_bytes); retry later", limit)
}

// overBudgetMessage is the message of a 413 for a body larger than the whole budget.
func overBudgetMessage(limit int64) string {
	return fmt.Sprintf("the request body is larger than the gateway's limit of %d bytes of buffered request bodies (max_buffered_body_bytes)", limit)
}
