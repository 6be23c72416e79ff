// Command topicgate is a KrakenD plugin (build with -buildmode=plugin) that publishes
// HTTP requests to Kafka through the topicgate core (Rust, linked in through cgo).
// One .so serves both mounting styles:
//   - HandlerRegisterer: plugin/http-server (service level, routes in its config);
//   - ClientRegisterer: plugin/http-client (the backend of an ordinary endpoint).
//
// Both also implement RegisterLogger, through which KrakenD hands over its logger.
package main

import (
	"context"
	"net/http"
)

// registerer is the type of the exported symbols KrakenD looks up.
type registerer string

// HandlerRegisterer is looked up by KrakenD's http-server plugin loader.
var HandlerRegisterer = registerer(pluginName)

// ClientRegisterer is looked up by KrakenD's http-client plugin loader.
var ClientRegisterer = registerer(pluginName)

// RegisterHandlers registers the http-server factory under the plugin's name.
func (r registerer) RegisterHandlers(f func(
	name string,
	handler func(context.Context, map[string]interface{}, http.Handler) (http.Handler, error),
)) {
	f(string(r), serverFactory)
	logDebug("http-server handler registered as", string(r))
}

// RegisterClients registers the http-client factory under the plugin's name.
func (r registerer) RegisterClients(f func(
	name string,
	handler func(context.Context, map[string]interface{}) (http.Handler, error),
)) {
	f(string(r), clientFactory)
	logDebug("http-client handler registered as", string(r))
}

// RegisterLogger receives KrakenD's logger.
func (registerer) RegisterLogger(v interface{}) { setLogger(v) }

func main() {}
