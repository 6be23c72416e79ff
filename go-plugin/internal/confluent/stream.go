package confluent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/stream"
)

// v3Stream is Confluent's streaming mode on a v3 …/records route (README "Confluent REST Proxy
// v3"): concatenated produce requests read and produced as they arrive, each answered by its
// delivery report in order, "\r\n" after each, as Confluent's REST Proxy writes them. A record's
// error is its report and the stream goes on; malformed JSON, a request over
// batch.max_line_bytes, a read error or a client idle for batch.stream.idle_timeout_ms end it
// with an error report.
type v3Stream struct {
	r              *http.Request
	bc             *config.Batch
	trace          bool // add the request's trace context to each record's headers
	jsonKeys       bool // the core has a key_schema: keys are JSON text
	cluster, topic string
}

// serveStream serves a …/records request whose body is chunked (its length unknown)
// as a stream, when the route and the mounting can stream. false: nothing was answered, and the
// request is read whole instead.
func serveStream(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route, cluster, topic string, m *metrics.Topic) bool {
	if r.ContentLength >= 0 || stream.Refusal(o, &rc.Batch) != "" {
		return false
	}
	conn, err := stream.OpenConn(w, r, "application/json; charset=utf-8")
	if err != nil {
		return false
	}
	stream.Run[v3Meta](conn, &rc.Batch, topic, m, o.Pub, &v3Stream{r: r, bc: &rc.Batch, trace: o.TraceHeaders, jsonKeys: o.JSONKeys, cluster: cluster, topic: topic}, true)
	return true
}

func (f *v3Stream) Read(body io.Reader, bc *config.Batch, out chan<- *stream.Chunk, stop <-chan struct{}) {
	stream.ReadValues(body, bc.MaxLineBytes, out, stop)
}

func (f *v3Stream) Record(it stream.Line) (core.Record, v3Meta, int, string) {
	refuse := func(code int, msg string) (core.Record, v3Meta, int, string) {
		return core.Record{}, v3Meta{code: code, msg: msg}, v3HTTPStatus(code), msg
	}
	if it.TooLong {
		return refuse(v3TooLarge, fmt.Sprintf("record %d is larger than the limit of %d bytes (batch.max_line_bytes)", it.N, f.bc.MaxLineBytes))
	}
	dec := json.NewDecoder(bytes.NewReader(it.Text))
	dec.DisallowUnknownFields()
	var req v3Request
	if _, msg := decodeV3Request(dec, it.N, &req); msg != "" {
		return refuse(v3BadRequest, msg)
	}
	e := newV3Entry(f.r, f.topic, &req, f.trace, f.jsonKeys)
	if e.meta.code != 0 {
		return refuse(e.meta.code, e.meta.msg)
	}
	return e.rec, e.meta, 0, ""
}

func (f *v3Stream) Answer(b []byte, e *stream.Entry[v3Meta]) []byte {
	return appendV3Report(b, v3Answer(f.cluster, f.topic, &e.Meta, e.Outcome))
}

// End: a stream that stopped early, or had no record, ends with an error report.
func (f *v3Stream) End(s stream.Summary) []byte {
	var code int
	var msg string
	switch {
	case s.StopStatus != 0:
		code = s.StopStatus
		msg = fmt.Sprintf("the stream stopped at record %d: %s; every record answered stays as answered; no record after the last answer was produced", s.StopLine, s.StopMsg)
	case s.Records == 0:
		code, msg = v3BadRequest, "the request body is empty; send a produce request"
	default:
		return nil
	}
	logging.Access(v3HTTPStatus(code), s.Topic, msg)
	return appendV3Report(nil, v3Error{ErrorCode: code, Message: msg})
}
