// Package main is the benchmark's stand-in for KrakenD CE's Kafka publisher backend
// (backend/pubsub/publisher, github.com/krakend/krakend-pubsub), which cannot be built here
// because KrakenD's Go modules are not served. It is NOT KrakenD's code. It is a KrakenD
// plugin/http-client, so it runs in the same host as topicgate-backend (build/kdhost, or
// build/krakend) and both contenders pay the same gateway HTTP path: only the backend differs.
//
// Per request it does what that backend does: the topic is opened once with gocloud.dev's
// kafkapubsub URL opener (kafka://<topic>, brokers from KAFKA_BROKERS, the driver's default
// sarama config: acks=1), the raw body is sent with topic.Send together with the headers
// KrakenD forwards as metadata, and the answer is written after Send returns.
//
//	"plugin/http-client": {"name": "krakend-pubsub-standin",
//	                       "krakend-pubsub-standin": {"topic_url": "kafka://mytopic"}}
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/kafkapubsub" // registers kafka:// (reads KAFKA_BROKERS)
)

// krakendVersion is what KrakenD puts in the User-Agent of backend requests.
const krakendVersion = "2.13.8"

// registerer is the plugin's KrakenD client registerer; its value is the plugin's name.
type registerer string

// ClientRegisterer is the symbol KrakenD looks up in a plugin/http-client .so.
var ClientRegisterer = registerer("krakend-pubsub-standin")

// RegisterClients hands KrakenD the factory of the stand-in's backend handler.
func (r registerer) RegisterClients(f func(
	name string,
	handler func(context.Context, map[string]interface{}) (http.Handler, error),
)) {
	f(string(r), r.newClient)
}

// newClient opens the configured topic once, as the real backend does at start-up; the topic
// is shut down (pending sends flushed) when KrakenD cancels ctx.
func (r registerer) newClient(ctx context.Context, extra map[string]interface{}) (http.Handler, error) {
	cfg, _ := extra[string(r)].(map[string]interface{})
	topicURL, _ := cfg["topic_url"].(string)
	if topicURL == "" {
		return nil, errors.New(`krakend-pubsub-standin: "topic_url" is required, e.g. "kafka://mytopic"`)
	}
	topic, err := pubsub.OpenTopic(ctx, topicURL)
	if err != nil {
		return nil, fmt.Errorf("krakend-pubsub-standin: open %s: %w", topicURL, err)
	}
	go func() {
		<-ctx.Done()
		_ = topic.Shutdown(context.Background())
	}()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// KrakenD's backend request carries these headers unless input_headers adds more; the
		// publisher sends the first value of each as message metadata (Kafka headers). The
		// benchmark's client is on loopback.
		meta := map[string]string{
			"User-Agent":       "KrakenD Version " + krakendVersion,
			"X-Forwarded-For":  "127.0.0.1",
			"X-Forwarded-Host": req.Host,
		}
		if err := topic.Send(req.Context(), &pubsub.Message{Body: body, Metadata: meta}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// KrakenD answers a completed backend response without data as an empty JSON object.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, "{}")
	}), nil
}

func main() {}
