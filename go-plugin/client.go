package main

import (
	"context"
	"net/http"
)

// clientFactory is the plugin/http-client factory: extra is a backend's
// "plugin/http-client" object; its "topicgate" block names the exposed topics. The
// handler is the backend: KrakenD hands it the backend request (url_pattern path,
// the endpoint's input_headers, the client's body) and, with "encoding": "no-op" on the
// backend and "output_encoding": "no-op" on the endpoint, returns its status, headers and
// body to the client unchanged.
func clientFactory(_ context.Context, extra map[string]interface{}) (http.Handler, error) {
	cfg, pub, err := setUp(extra, parseClientConfig)
	if err != nil {
		return nil, err
	}
	return newClientHandler(cfg, pub), nil
}

func newClientHandler(cfg *pluginConfig, pub publisher) http.Handler {
	ph := &publishHandler{pub: pub, retryAfter: cfg.RetryAfterSeconds, traceHeaders: cfg.TraceHeaders}
	rc := &cfg.Routes[0]
	if rc.Confluent {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ph.serveConfluent(w, r, rc) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ph.serve(w, r, rc)
	})
}
