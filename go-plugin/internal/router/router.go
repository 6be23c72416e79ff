// Package router mounts the plugin's routes: it picks a request's route and topic, checks what
// every request style shares (method, Content-Type), and hands the request to its style: single,
// batch, stream or confluent.
package router

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/topicgate/topicgate/go-plugin/internal/batch"
	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/confluent"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/idempotency"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/read"
	"github.com/topicgate/topicgate/go-plugin/internal/request"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
	"github.com/topicgate/topicgate/go-plugin/internal/shutdown"
	"github.com/topicgate/topicgate/go-plugin/internal/single"
	"github.com/topicgate/topicgate/go-plugin/internal/stream"
)

// NewServer is the plugin/http-server handler: requests under a route's path_prefix are
// published (and the metrics and readiness paths served); all others go to next (KrakenD)
// untouched.
func NewServer(cfg *config.Plugin, pub core.Publisher, next http.Handler) http.Handler {
	o := &request.Options{Pub: pub, RetryAfter: cfg.RetryAfterSeconds, TraceHeaders: cfg.TraceHeaders, Streams: true, JSONKeys: cfg.KeySchema}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case cfg.MetricsPath:
				if cfg.MetricsPath != "" {
					metrics.Handler.ServeHTTP(w, r)
					return
				}
			case cfg.ReadyPath:
				if cfg.ReadyPath != "" {
					metrics.Ready(w, r, cfg.ReadyRequiresBroker)
					return
				}
			}
		}
		rc, ok := match(cfg.Routes, r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		dispatch(w, r, o, rc)
	})
}

// NewClient is the plugin/http-client handler: the backend of an endpoint, its one route the
// block itself. KrakenD hands it the backend request (url_pattern path, the endpoint's
// input_headers, the client's body) and, with "encoding": "no-op" on the backend and
// "output_encoding": "no-op" on the endpoint, returns its status, headers and body to the client
// unchanged.
func NewClient(cfg *config.Plugin, pub core.Publisher) http.Handler {
	o := &request.Options{Pub: pub, RetryAfter: cfg.RetryAfterSeconds, TraceHeaders: cfg.TraceHeaders, JSONKeys: cfg.KeySchema}
	rc := &cfg.Routes[0]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dispatch(w, r, o, rc)
	})
}

// dispatch serves a request of route rc (either mounting) in its API style, counted by the
// shutdown so that it finishes before the publishers are freed.
func dispatch(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route) {
	if !shutdown.Enter() {
		refuseShuttingDown(w, o)
		return
	}
	defer shutdown.Leave(r.Context())
	if rc.Confluent {
		confluent.Serve(w, r, o, rc)
		return
	}
	serve(w, r, o, rc)
}

// refuseShuttingDown answers a request that came after the shutdown freed the publishers.
func refuseShuttingDown(w http.ResponseWriter, o *request.Options) {
	const msg = "the gateway is shutting down; nothing written; send the request to another instance"
	logging.Access(http.StatusServiceUnavailable, "", msg)
	respond.Error(w, http.StatusServiceUnavailable, msg, o.RetryAfter)
}

// match finds the server-mode route owning path: the first route (in configuration order)
// whose prefix path starts with. ok is false when no route owns it; such requests belong to
// KrakenD.
func match(routes []config.Route, path string) (rc *config.Route, ok bool) {
	for i := range routes {
		if strings.HasPrefix(path, routes[i].Prefix) {
			return &routes[i], true
		}
	}
	return nil, false
}

// serve answers r on a topicgate-API route rc: one record (application/json), a batch
// (application/x-ndjson) or a stream (a batch that accepts an NDJSON answer).
func serve(w http.ResponseWriter, r *http.Request, o *request.Options, rc *config.Route) {
	if read.Wanted(r, rc) {
		read.Serve(w, r, o, rc)
		return
	}
	started := time.Now()
	topic, err := config.TopicFor(rc, r.URL.Path)
	m := metrics.For(topic) // "" when no route allows the topic: such requests share one series; nil when off
	if m != nil {
		sw := &respond.StatusWriter{ResponseWriter: w}
		w = sw
		defer func() { m.Answered(sw.Status, started) }()
	}
	fail := func(status int, msg string) {
		logging.Access(status, topic, msg)
		respond.Error(w, status, msg, o.RetryAfter)
	}
	if err != nil {
		fail(http.StatusNotFound, err.Error())
		return
	}
	if r.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed; use POST", r.Method))
		return
	}
	isBatch, msg, ok := request.ContentType(r.Header.Get("Content-Type"))
	switch {
	case !ok:
		fail(http.StatusUnsupportedMediaType, msg)
	case isBatch && stream.Wanted(r):
		if h := rc.Idempotency.Header; h != "" && len(r.Header.Values(h)) > 0 {
			fail(http.StatusBadRequest, h+" is not taken on streams (each record is answered as it is written); send the records as a batch, or without the header")
			return
		}
		stream.Serve(w, r, o, rc, topic, m, fail)
	case isBatch:
		// fail answers on w, past the idempotency recorder: error answers are not kept for replay.
		idempotency.Serve(w, r, rc, topic, rc.Batch.MaxBodyBytes, o.RetryAfter, o.Pub, func(w http.ResponseWriter, r *http.Request) {
			batch.Serve(w, r, o, rc, topic, m, fail)
		})
	default:
		idempotency.Serve(w, r, rc, topic, rc.MaxBodyBytes, o.RetryAfter, o.Pub, func(w http.ResponseWriter, r *http.Request) {
			single.Serve(w, r, o, rc, topic, m, fail)
		})
	}
}
