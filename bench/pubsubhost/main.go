// Command pubsubhost is the benchmark's stand-in for KrakenD CE's Kafka publisher backend
// (backend/pubsub/publisher, github.com/krakend/krakend-pubsub), which cannot be built here
// because KrakenD's Go modules are not served. It is NOT KrakenD: a plain net/http server that
// does per request what that backend does — the topic is opened once at start with gocloud.dev's
// kafkapubsub URL opener (kafka://<topic>, brokers from KAFKA_BROKERS, the driver's default
// sarama config: acks=1), each request's raw body is sent with topic.Send together with the
// headers KrakenD would forward as metadata, and the answer is written after Send returns.
//
//	pubsubhost -listen 127.0.0.1:8081 -topic kafka://mytopic
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/kafkapubsub" // registers kafka:// (reads KAFKA_BROKERS)
)

// krakendVersion is what KrakenD puts in the User-Agent of backend requests.
const krakendVersion = "2.13.8"

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on")
	topicURL := flag.String("topic", "", "topic URL, e.g. kafka://mytopic")
	flag.Parse()
	if *topicURL == "" {
		fmt.Fprintln(os.Stderr, "usage: pubsubhost -listen host:port -topic kafka://<topic>")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	topic, err := pubsub.OpenTopic(ctx, *topicURL)
	if err != nil {
		log.Fatalf("open %s: %v", *topicURL, err)
	}
	defer func() { _ = topic.Shutdown(context.Background()) }()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// KrakenD's backend request carries these headers unless input_headers adds more;
		// the publisher sends the first value of each as message metadata (Kafka headers).
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		meta := map[string]string{
			"User-Agent":       "KrakenD Version " + krakendVersion,
			"X-Forwarded-For":  host,
			"X-Forwarded-Host": r.Host,
		}
		if err := topic.Send(r.Context(), &pubsub.Message{Body: body, Metadata: meta}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// KrakenD answers a completed backend response without data as an empty JSON object.
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = io.WriteString(w, "{}")
	})

	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("pubsubhost: %s on %s (stand-in for KrakenD's pubsub publisher, not KrakenD)", *topicURL, *listen)
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}
}
