// Command topicgate is a KrakenD plugin (build with -buildmode=plugin) that publishes
// HTTP requests to Kafka through the topicgate core (Rust, linked in through cgo).
// One .so serves both mounting styles:
//   - HandlerRegisterer: plugin/http-server (service level, routes in its config);
//   - ClientRegisterer: plugin/http-client (the backend of an ordinary endpoint).
//
// Both also implement RegisterLogger, through which KrakenD hands over its logger. This
// package only registers and wires: the parts are under internal/.
package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"github.com/topicgate/topicgate/go-plugin/internal/budget"
	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/logging"
	"github.com/topicgate/topicgate/go-plugin/internal/metrics"
	"github.com/topicgate/topicgate/go-plugin/internal/read"
	"github.com/topicgate/topicgate/go-plugin/internal/router"
	"github.com/topicgate/topicgate/go-plugin/internal/shutdown"
)

// registerer is the type of the exported symbols KrakenD looks up.
type registerer string

// HandlerRegisterer is looked up by KrakenD's http-server plugin loader.
var HandlerRegisterer = registerer(config.Name)

// ClientRegisterer is looked up by KrakenD's http-client plugin loader.
var ClientRegisterer = registerer(config.Name)

// RegisterHandlers registers the http-server factory under the plugin's name.
func (r registerer) RegisterHandlers(f func(
	name string,
	handler func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error),
)) {
	f(string(r), serverFactory)
	logging.Debug("http-server handler registered as", string(r))
}

// RegisterClients registers the http-client factory under the plugin's name.
func (r registerer) RegisterClients(f func(
	name string,
	handler func(context.Context, map[string]interface{}) (http.Handler, error),
)) {
	f(string(r), clientFactory)
	logging.Debug("http-client handler registered as", string(r))
}

// RegisterLogger receives KrakenD's logger and routes the core's log records to it. Anything
// else is ignored.
func (registerer) RegisterLogger(v interface{}) {
	if logging.Set(v) {
		core.InstallLog()
		logging.Debug("logger registered; core", core.Version())
	}
}

func main() {}

// serverFactory is the plugin/http-server factory: extra is the service-level
// "plugin/http-server" object; its "topicgate" block lists the routes. Requests under a
// route's path_prefix are published; all others go to next (KrakenD) untouched.
func serverFactory(ctx context.Context, extra map[string]interface{}, next http.Handler) (http.Handler, error) {
	shutdown.Watch(ctx)
	cfg, pub, err := setUp(extra, config.ParseServer)
	if err != nil {
		return nil, err
	}
	for _, rc := range cfg.Routes {
		logging.Info("serving topics under", rc.Prefix, "(http-server)")
	}
	if cfg.MetricsPath != "" {
		metrics.Enable()
		logging.Info("serving metrics at", cfg.MetricsPath)
	}
	if cfg.MaxBufferedBodyBytes > 0 { // one budget for the process: the one server block sets it
		budget.Bodies.SetLimit(cfg.MaxBufferedBodyBytes)
	}
	logging.Info(fmt.Sprintf("request bodies buffered at once: at most %d bytes (max_buffered_body_bytes)", budget.Bodies.Limit()))
	read.SetMaxGatewayReaders(cfg.MaxGatewayReaders) // one bound for the process, as the body budget
	logging.Info(fmt.Sprintf("readers at once, all routes: at most %d (max_gateway_readers)", read.MaxGatewayReaders()))
	if cfg.ReadyPath != "" {
		logging.Info("serving readiness at", cfg.ReadyPath, fmt.Sprintf("(ready_requires_broker %v)", cfg.ReadyRequiresBroker))
	}
	return router.NewServer(cfg, pub, next), nil
}

// clientFactory is the plugin/http-client factory: extra is a backend's
// "plugin/http-client" object; its "topicgate" block names the exposed topics.
func clientFactory(ctx context.Context, extra map[string]interface{}) (http.Handler, error) {
	shutdown.Watch(ctx)
	cfg, pub, err := setUp(extra, config.ParseClient)
	if err != nil {
		return nil, err
	}
	return router.NewClient(cfg, pub), nil
}

// newCorePublisher creates a publisher from a core config; status is an HTTP status.
// It is a variable so tests can replace the core.
var newCorePublisher = core.NewPublisher

var (
	publishersMu sync.Mutex
	publishers   = map[string]core.Publisher{}
)

// publisherFor returns the process-wide publisher for a (canonical) core config,
// creating it on first use. KrakenD CE builds its handlers once, so a publisher lives until the
// shutdown, which flushes it (bounded by its delivery timeout) and frees it.
func publisherFor(cfg []byte) (core.Publisher, error) {
	publishersMu.Lock()
	defer publishersMu.Unlock()
	if p, ok := publishers[string(cfg)]; ok {
		return p, nil
	}
	p, status, msg := newCorePublisher(cfg)
	if status != 200 || p == nil {
		return nil, fmt.Errorf("%s: the core refused the configuration (%d): %s", config.Name, status, msg)
	}
	publishers[string(cfg)] = p
	if c, ok := p.(shutdown.Publisher); ok {
		shutdown.Add(c, config.DeliveryTimeout(cfg))
	}
	return p, nil
}

// setUp is the work both factories share: read the "topicgate" block of extra, parse it
// with parse, and get the publisher for its core config; failures are logged once here.
func setUp(extra map[string]interface{}, parse func([]byte, func(string) (string, bool)) (*config.Plugin, error)) (*config.Plugin, core.Publisher, error) {
	block, err := config.Block(extra)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := parse(block, nil)
	if err != nil {
		logging.Error(err.Error())
		return nil, nil, err
	}
	for _, rc := range cfg.Routes { // listed topics keep their own metric series past the cap
		for t := range rc.Topics {
			metrics.List(t)
		}
	}
	if cfg.Core == nil { // a server block that only serves metrics and readiness
		return cfg, nil, nil
	}
	pub, err := publisherFor(cfg.Core)
	if err != nil {
		logging.Error(err.Error())
		return nil, nil, err
	}
	return cfg, pub, nil
}
