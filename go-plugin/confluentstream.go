package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// v3Stream is Confluent's streaming mode on a v3 …/records route (README "Confluent REST Proxy
// v3"): concatenated produce requests read and produced as they arrive, each answered by its
// delivery report in order, "\r\n" after each, as Confluent's REST Proxy writes them. A record's
// error is its report and the stream goes on; malformed JSON, a request over
// batch.max_line_bytes, a read error or a client idle for batch.stream.idle_timeout_ms end it
// with an error report.
type v3Stream struct {
	h              *publishHandler
	r              *http.Request
	bc             *batchConfig
	cluster, topic string
}

// serveConfluentStream serves a …/records request whose body is chunked (its length unknown)
// as a stream, when the route and the mounting can stream. false: nothing was answered, and the
// request is read whole instead.
func (h *publishHandler) serveConfluentStream(w http.ResponseWriter, r *http.Request, rc *routeConfig, cluster, topic string, m *topicMetrics) bool {
	if r.ContentLength >= 0 || h.streamRefusal(&rc.Batch) != "" {
		return false
	}
	conn, err := openStreamConn(w, r, "application/json; charset=utf-8")
	if err != nil {
		return false
	}
	runStream(conn, &rc.Batch, topic, m, h.pub, &v3Stream{h: h, r: r, bc: &rc.Batch, cluster: cluster, topic: topic}, true)
	return true
}

func (f *v3Stream) read(body io.Reader, bc *batchConfig, out chan<- *streamChunk, stop <-chan struct{}) {
	readValues(body, bc.MaxLineBytes, out, stop)
}

func (f *v3Stream) record(it streamLine) (batchRecord, v3Meta, int, string) {
	refuse := func(code int, msg string) (batchRecord, v3Meta, int, string) {
		return batchRecord{}, v3Meta{code: code, msg: msg}, v3HTTPStatus(code), msg
	}
	if it.tooLong {
		return refuse(v3TooLarge, fmt.Sprintf("record %d is larger than the limit of %d bytes (batch.max_line_bytes)", it.n, f.bc.MaxLineBytes))
	}
	dec := json.NewDecoder(bytes.NewReader(it.text))
	dec.DisallowUnknownFields()
	var req v3Request
	if _, msg := decodeV3Request(dec, it.n, &req); msg != "" {
		return refuse(v3BadRequest, msg)
	}
	e := f.h.v3Entry(f.r, &req)
	if e.meta.code != 0 {
		return refuse(e.meta.code, e.meta.msg)
	}
	return e.rec, e.meta, 0, ""
}

func (f *v3Stream) answer(b []byte, e *streamEntry) []byte {
	return appendV3Report(b, v3Answer(f.cluster, f.topic, &e.v3, e.o))
}

// end: a stream that stopped early, or had no record, ends with an error report.
func (f *v3Stream) end(sr *streamRun) {
	var code int
	var msg string
	switch {
	case sr.stopStatus != 0:
		code = sr.stopStatus
		msg = fmt.Sprintf("the stream stopped at record %d: %s; every record answered above stays as answered, no later record was produced", sr.stopLine, sr.stopMsg)
	case sr.records == 0:
		code, msg = v3BadRequest, "the request body is empty; send a produce request"
	default:
		return
	}
	logOutcome(v3HTTPStatus(code), sr.topic, msg)
	sr.out.add(appendV3Report(nil, v3Error{ErrorCode: code, Message: msg}))
}
