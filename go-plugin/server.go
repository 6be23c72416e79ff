package main

import (
	"context"
	"net/http"
)

// serverFactory is the plugin/http-server factory: extra is the service-level
// "plugin/http-server" object; its "topicgate" block lists the routes. Requests under a
// route's path_prefix are published; all others go to next (KrakenD) untouched.
func serverFactory(_ context.Context, extra map[string]interface{}, next http.Handler) (http.Handler, error) {
	cfg, pub, err := setUp(extra, parseServerConfig)
	if err != nil {
		return nil, err
	}
	for _, rc := range cfg.Routes {
		logInfo("serving topics under", rc.Prefix, "(http-server)")
	}
	if cfg.MetricsPath != "" {
		recording.Store(true)
		logInfo("serving metrics at", cfg.MetricsPath)
	}
	if cfg.ReadyPath != "" {
		logInfo("serving readiness at", cfg.ReadyPath)
	}
	return newServerHandler(cfg, pub, next), nil
}

func newServerHandler(cfg *pluginConfig, pub publisher, next http.Handler) http.Handler {
	ph := &publishHandler{pub: pub, retryAfter: cfg.RetryAfterSeconds, traceHeaders: cfg.TraceHeaders, streams: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			switch r.URL.Path {
			case cfg.MetricsPath:
				if cfg.MetricsPath != "" {
					metricsHandler.ServeHTTP(w, r)
					return
				}
			case cfg.ReadyPath:
				if cfg.ReadyPath != "" {
					readyHandler(w, r)
					return
				}
			}
		}
		rc, ok := matchRoute(cfg.Routes, r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		if rc.Confluent {
			ph.serveConfluent(w, r, rc)
			return
		}
		ph.serve(w, r, rc)
	})
}
