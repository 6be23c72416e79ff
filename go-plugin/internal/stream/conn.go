package stream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// Conn is where a stream reads its body and writes its answer, both at once.
type Conn interface {
	body() io.Reader
	setReadDeadline(t time.Time) error
	setWriteDeadline(t time.Time) error
	// begin answers 200 with the stream's headers (its Content-Type given to OpenConn);
	// send writes p and flushes it.
	begin()
	send(p []byte) error
	// end finishes the answer once nothing reads the body any more (readerDone is closed then).
	end(readerDone <-chan struct{})
}

// OpenConn gives the stream a connection that can read while it writes: the writer's own
// (full duplex, http.ResponseController), or, when a wrapper hides it (KrakenD's
// telemetry/opentelemetry wraps the writer without Unwrap), the connection taken over with Hijack.
// Without either, net/http would discard unread input at the first write, losing records.
func OpenConn(w http.ResponseWriter, r *http.Request, contentType string) (Conn, error) {
	ctl := http.NewResponseController(w)
	if err := ctl.EnableFullDuplex(); err == nil {
		return &duplexConn{w: w, r: r, ctl: ctl, contentType: contentType}, nil
	}
	if r.ProtoMajor != 1 {
		return nil, errors.New("this server cannot read a request while answering it over " + r.Proto)
	}
	conn, brw, err := ctl.Hijack()
	if err != nil {
		return nil, errors.New("this server can neither read a request while answering it nor hand over the connection: " + err.Error())
	}
	if sw, ok := w.(*respond.StatusWriter); ok {
		sw.Status = http.StatusOK // for the metrics: the answer no longer goes through w
	}
	return newHijackedConn(conn, brw, r, contentType)
}

// duplexConn streams through the ResponseWriter in full duplex mode.
type duplexConn struct {
	w           http.ResponseWriter
	r           *http.Request
	ctl         *http.ResponseController
	contentType string
}

func (c *duplexConn) body() io.Reader                    { return c.r.Body }
func (c *duplexConn) setReadDeadline(t time.Time) error  { return c.ctl.SetReadDeadline(t) }
func (c *duplexConn) setWriteDeadline(t time.Time) error { return c.ctl.SetWriteDeadline(t) }

func (c *duplexConn) begin() {
	h := c.w.Header()
	h.Set("Content-Type", c.contentType)
	h.Set("Cache-Control", "no-store")
	c.w.WriteHeader(http.StatusOK)
}

func (c *duplexConn) send(p []byte) error {
	if _, err := c.w.Write(p); err != nil {
		return err
	}
	return c.ctl.Flush()
}

// end: net/http finishes the answer and reads what is left of the body; the connection may serve
// further requests, so no deadline stays set.
func (c *duplexConn) end(<-chan struct{}) { _ = c.ctl.SetWriteDeadline(time.Time{}) }

// hijackedConn streams over a connection taken from net/http: it reads the body's framing and
// writes a chunked HTTP/1.1 answer itself, and closes the connection at the end.
type hijackedConn struct {
	conn        net.Conn
	brw         *bufio.ReadWriter
	in          io.Reader
	out         io.WriteCloser // chunked encoding onto brw
	contentType string
}

// lingerAfterAnswer: how long a taken-over connection goes on reading (and dropping) input after
// the answer, so that closing it with unread input does not reset it before the client has the
// answer (as net/http does).
const lingerAfterAnswer = 500 * time.Millisecond

func newHijackedConn(conn net.Conn, brw *bufio.ReadWriter, r *http.Request, contentType string) (*hijackedConn, error) {
	c := &hijackedConn{conn: conn, brw: brw, contentType: contentType}
	switch {
	case len(r.TransferEncoding) > 0 && r.TransferEncoding[0] == "chunked":
		c.in = httputil.NewChunkedReader(brw.Reader)
	case r.ContentLength >= 0:
		c.in = io.LimitReader(brw.Reader, r.ContentLength)
	default:
		c.in = brw.Reader // HTTP/1.0 without a length: the body ends with the connection
	}
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		if _, err := brw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			conn.Close()
			return nil, err
		}
		if err := brw.Flush(); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return c, nil
}

func (c *hijackedConn) body() io.Reader                    { return c.in }
func (c *hijackedConn) setReadDeadline(t time.Time) error  { return c.conn.SetReadDeadline(t) }
func (c *hijackedConn) setWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

func (c *hijackedConn) begin() {
	_, _ = c.brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: " + c.contentType + "\r\n" +
		"Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n" +
		"Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n\r\n")
	c.out = httputil.NewChunkedWriter(c.brw)
}

func (c *hijackedConn) send(p []byte) error {
	if len(p) > 0 {
		if _, err := c.out.Write(p); err != nil {
			return err
		}
	}
	return c.brw.Flush()
}

// end writes the last chunk, closes the sending side, and closes the connection once the reader
// is done and the client had lingerAfterAnswer to stop sending.
func (c *hijackedConn) end(readerDone <-chan struct{}) {
	if c.out != nil {
		_ = c.out.Close()
		_, _ = c.brw.WriteString("\r\n") // the chunked body's (empty) trailer
		_ = c.brw.Flush()
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(lingerAfterAnswer)) // also ends a read the reader is in
	go func() {
		<-readerDone
		_, _ = io.Copy(io.Discard, c.brw.Reader)
		c.conn.Close()
	}()
}
