package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// route is one configured endpoint bound to a client-plugin backend.
type route struct {
	method  string
	segs    []string // "{x}" marks a parameter
	ep      endpointConfig
	timeout time.Duration // bounds the backend's context, as KrakenD's endpoint timeout does
	backend http.Handler
}

func serve(cfg *kdConfig, log *logger) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	reg, err := loadAll(cfg.Plugin.Folder, cfg.Plugin.Pattern, log)
	if err != nil {
		return err
	}

	var routes []route
	for _, e := range cfg.Endpoints {
		b := e.Backend[0]
		extra := b.ExtraConfig[nsClient].(map[string]interface{})
		name, _ := extra["name"].(string)
		f, ok := reg.clients[name]
		if !ok {
			return fmt.Errorf("endpoint %s: no client plugin registered as %q", e.Endpoint, name)
		}
		h, err := f(ctx, extra)
		if err != nil {
			return fmt.Errorf("endpoint %s: client plugin %s: %v", e.Endpoint, name, err)
		}
		log.Info("[ENDPOINT:", e.Endpoint+"]", "backend: client plugin", name)
		routes = append(routes, route{method: e.method(), segs: strings.Split(e.Endpoint, "/"), ep: e, timeout: cfg.endpointTimeout(e), backend: h})
	}

	var handler http.Handler = withHealth(cfg.healthPath(), router(routes, log))
	if v, ok := cfg.ExtraConfig[nsServer].(map[string]interface{}); ok {
		names, _ := serverNames(v)
		for _, name := range names {
			f, ok := reg.servers[name]
			if !ok {
				log.Error("[PLUGIN: Server] No plugin registered as", name)
				continue
			}
			h, err := f(ctx, v, handler)
			if err != nil {
				log.Error("[PLUGIN: Server] Error getting the plugin handler:", err)
				continue
			}
			log.Info("[PLUGIN: Server] Injecting plugin", name)
			handler = h
		}
	}

	srv, err := cfg.server()
	if err != nil {
		return err
	}
	srv.Addr, srv.Handler = net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.Port)), handler
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("[SERVICE] listening on port", cfg.Port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		// As KrakenD: wait for the requests in flight (not for taken-over connections), for at most
		// max_shutdown_wait_time when it is set.
		log.Info("[SERVICE] shutting down")
		sctx := context.Background()
		if d := cfg.shutdownWait(); d > 0 {
			var c context.CancelFunc
			sctx, c = context.WithTimeout(sctx, d)
			defer c()
		}
		return srv.Shutdown(sctx)
	}
}

// router matches the request against the endpoints (KrakenD answers 404 otherwise) and
// calls the backend the way KrakenD's client-plugin executor does: a new request to
// host + url_pattern with the parameters filled in, the endpoint's input_headers, the
// client's body, a context ending at the endpoint's timeout; the recorded response is passed
// through unchanged (no-op). A backend that answers after the endpoint's timeout is dropped
// and the client gets KrakenD's bare 500 with an empty body (lura's endpoint handler turns a
// done request context into server.ErrInternalError), as real KrakenD CE 2.13.8 does.
func router(routes []route, log *logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		segs := strings.Split(r.URL.Path, "/")
		for _, rt := range routes {
			params, ok := match(rt.segs, segs)
			if !ok || rt.method != r.Method {
				continue
			}
			b := rt.ep.Backend[0]
			target := b.URLPattern
			for k, v := range params {
				target = strings.ReplaceAll(target, "{"+k+"}", v)
			}
			host := "http://backend"
			if len(b.Host) > 0 {
				host = strings.TrimSuffix(b.Host[0], "/")
			}
			method := b.Method
			if method == "" {
				method = rt.method
			}
			ctx, cancel := context.WithTimeout(r.Context(), rt.timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), host+target, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			req.ContentLength = r.ContentLength
			for _, h := range rt.ep.InputHeaders {
				if h == "*" {
					req.Header = r.Header.Clone()
					break
				}
				if vs := r.Header.Values(h); len(vs) > 0 {
					req.Header[http.CanonicalHeaderKey(h)] = vs
				}
			}
			rec := httptest.NewRecorder()
			rt.backend.ServeHTTP(rec, req)
			if ctx.Err() != nil {
				log.Error("[ENDPOINT:", rt.ep.Endpoint+"]", ctx.Err())
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			res := rec.Result()
			for k, vs := range res.Header {
				w.Header()[k] = vs
			}
			w.WriteHeader(res.StatusCode)
			_, _ = io.Copy(w, res.Body)
			log.Debug("[ENDPOINT:", rt.ep.Endpoint+"]", r.Method, r.URL.Path, res.StatusCode)
			return
		}
		var allow []string
		for _, rt := range routes {
			if _, ok := match(rt.segs, segs); ok {
				allow = append(allow, rt.method)
			}
		}
		if len(allow) > 0 {
			methodNotAllowed(w, strings.Join(allow, ", "))
			return
		}
		plainAnswer(w, http.StatusNotFound, "404 page not found")
	})
}

// methodNotAllowed is KrakenD's (gin's) answer to a known path asked with another method.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	plainAnswer(w, http.StatusMethodNotAllowed, "405 method not allowed")
}

// plainAnswer writes status with text, as KrakenD writes its 404 and 405 (text/plain, no newline).
func plainAnswer(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// withHealth serves KrakenD's health check on GET path (none when path is ""): 200 with
// {"agents":{},"now":"<time>","status":"ok"}, as lura's gin engine answers it (kdhost runs no
// async agents); another method gets 405. Every other path goes to next.
func withHealth(path string, next http.Handler) http.Handler {
	if path == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		body, _ := json.Marshal(map[string]interface{}{
			"agents": map[string]string{}, "now": time.Now().String(), "status": "ok",
		})
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	})
}

func match(pattern, path []string) (map[string]string, bool) {
	if len(pattern) != len(path) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if path[i] == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = path[i]
			continue
		}
		if p != path[i] {
			return nil, false
		}
	}
	return params, true
}
