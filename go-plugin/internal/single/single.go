// Package single publishes a request with one JSON body as one Kafka record (the HTTP contract
// of the design).
package single

import (
	"bytes"
	"fmt"
	"net/http"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// Serve publishes r's body to topic on route rc and answers with where it landed. fail answers a
// request-level error; m may be nil (metrics off).
func Serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route, topic string, m *metrics.Topic, fail func(int, string)) {
	body, buf, status, msg := request.Body(r, rc.MaxBodyBytes, tooLarge, m)
	defer request.Release(buf) // after the publish call: the core has copied what it keeps
	if status != 0 {
		fail(status, msg)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		fail(http.StatusBadRequest, "the request body is empty; send a JSON object")
		return
	}
	headers, key, err := o.Headers(r)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}

	headers = request.WithIdempotencyHeader(r, headers, 0)
	status, d, msg := o.Pub.Publish(r.Context(), topic, body, headers, key)
	httpCode, msg := respond.CoreStatus(status, core.KeyMessage(msg, request.KeyHeader))
	if httpCode == http.StatusOK {
		m.Acked(d)
		respond.OK(w, topic, d)
		return
	}
	fail(httpCode, msg)
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("the request body is larger than the limit of %d bytes", limit)
}
