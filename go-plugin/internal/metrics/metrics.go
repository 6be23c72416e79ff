// Package metrics keeps the plugin's Prometheus metrics (per topic, and the core's snapshot at
// scrape time) and answers the readiness probe.
package metrics

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/topicgate/topicgate/go-plugin/internal/budget"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
	"github.com/topicgate/topicgate/go-plugin/internal/respond"
)

// metricsPrefix starts every metric's name.
const metricsPrefix = "topicgate_"

// durationBuckets resolve 100 µs to 10 s (seconds).
var durationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Request-level metrics, kept by the plugin: it sees every request, including those it answers
// itself (404, 405, 413, 415) before the core is asked. The core's own counters come from its
// snapshot at scrape time (coreCollector).
var (
	registry = prometheus.NewRegistry()

	requestsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "requests_total",
		Help: "Publish requests answered, by topic (empty for a topic no route allows) and HTTP status.",
	}, []string{"topic", "status"})
	requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricsPrefix + "request_duration_seconds",
		Help:    "Time from a publish request reaching the plugin to its answer, by topic.",
		Buckets: durationBuckets,
	}, []string{"topic"})
	ackDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    metricsPrefix + "broker_ack_duration_seconds",
		Help:    "Time from a record being queued to the broker's acknowledgement, by topic (acknowledged records only).",
		Buckets: durationBuckets,
	}, []string{"topic"})
	bodyBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "request_body_bytes_total",
		Help: "Bytes of request bodies read, by topic.",
	}, []string{"topic"})
	batchRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "batch_records_total",
		Help: "Records of batch (NDJSON) requests answered, by topic and the record's status (0: not written because another record was invalid).",
	}, []string{"topic", "status"})
	producedBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "produced_bytes_total",
		Help: "Bytes of record values the broker acknowledged (Protobuf, with Glue framing if configured), by topic.",
	}, []string{"topic"})
	// Read from the budget at scrape time: always current, nothing added on a request's path.
	bufferedBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricsPrefix + "buffered_body_bytes",
		Help: "Bytes of request bodies the process holds now (reserved by Content-Length, else as read), all routes and mountings.",
	}, func() float64 { return float64(budget.Bodies.InUse()) })
	bufferedLimit = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricsPrefix + "buffered_body_bytes_limit",
		Help: "The bound on those bytes (max_buffered_body_bytes).",
	}, func() float64 { return float64(budget.Bodies.Limit()) })
)

func init() {
	registry.MustRegister(requestsTotal, requestDuration, ackDuration, bodyBytes, producedBytes, batchRecords,
		bufferedBytes, bufferedLimit, coreCollector{})
	// Go runtime (goroutines, OS threads, heap) and process (/proc: RSS, CPU, open fds), as
	// topicgate_go_* and topicgate_process_*.
	prefixed := prometheus.WrapRegistererWithPrefix(metricsPrefix, registry)
	prefixed.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Topic holds one topic's children of the vectors above, so that a request only adds to
// atomics (no label hashing, no lock).
type Topic struct {
	duration prometheus.Observer
	ack      prometheus.Observer
	body     prometheus.Counter
	produced prometheus.Counter
	topic    string
	statuses sync.Map // HTTP status (int) -> prometheus.Counter
}

var topics sync.Map // topic -> *Topic

// recording is on once a server block serves the metrics: with nobody to scrape them, requests
// skip even the atomic adds.
var recording atomic.Bool

// Enable turns recording on (for the life of the process): a server block serves the metrics.
func Enable() { recording.Store(true) }

// TopicCap bounds the distinct topic label values (topics not listed in a route's `topics`)
// the process records: a `topic_pattern` lets clients name topics, and each name would
// otherwise get its own series (memory and scrape without limit). Beyond it such topics share
// the label value OtherTopic. Listed topics, and "" (no route allows the topic), always get
// their own series.
const TopicCap = 1000

// OtherTopic is the topic label of the topics beyond TopicCap.
const OtherTopic = "other"

var (
	topicCap   = TopicCap   // a variable for tests
	topicsMu   sync.Mutex   // serialises creating a Topic
	unlisted   atomic.Int64 // Topics created for topics not listed (at most topicCap)
	listed     sync.Map     // topic -> true: in some route's `topics`
	otherTopic atomic.Pointer[Topic]
)

// List marks topics listed explicitly in a route's `topics`: they always get their own series.
func List(names ...string) {
	for _, t := range names {
		listed.Store(t, true)
	}
}

func newTopic(topic string) *Topic {
	return &Topic{
		duration: requestDuration.WithLabelValues(topic),
		ack:      ackDuration.WithLabelValues(topic),
		body:     bodyBytes.WithLabelValues(topic),
		produced: producedBytes.WithLabelValues(topic),
		topic:    topic,
	}
}

// For returns the metrics of topic ("" for requests naming no allowed topic), nil when
// metrics are not recorded (the methods below accept nil). A topic not listed in any route's
// `topics` and met once TopicCap such topics have series gets the shared OtherTopic metrics.
func For(topic string) *Topic {
	if !recording.Load() {
		return nil
	}
	if m, ok := topics.Load(topic); ok {
		return m.(*Topic)
	}
	_, isListed := listed.Load(topic)
	isListed = isListed || topic == ""
	if !isListed && unlisted.Load() >= int64(topicCap) {
		return other()
	}
	topicsMu.Lock()
	defer topicsMu.Unlock()
	if m, ok := topics.Load(topic); ok {
		return m.(*Topic)
	}
	if !isListed {
		if unlisted.Load() >= int64(topicCap) {
			return other()
		}
		unlisted.Add(1)
	}
	m := newTopic(topic)
	topics.Store(topic, m)
	return m
}

// other returns the metrics shared by the topics beyond TopicCap.
func other() *Topic {
	if m := otherTopic.Load(); m != nil {
		return m
	}
	otherTopic.CompareAndSwap(nil, newTopic(OtherTopic))
	return otherTopic.Load()
}

// Answered counts one answered request.
func (m *Topic) Answered(status int, started time.Time) {
	if m == nil {
		return
	}
	m.duration.Observe(time.Since(started).Seconds())
	c, ok := m.statuses.Load(status)
	if !ok {
		c, _ = m.statuses.LoadOrStore(status, requestsTotal.WithLabelValues(m.topic, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
}

// BatchRecords counts the records of a batch request by status (one add per status, not per
// record), and the acknowledged ones' latency and bytes.
func (m *Topic) BatchRecords(outs []core.Outcome) {
	if m == nil {
		return
	}
	var byStatus [8]struct{ status, n int } // a batch's answers have few distinct statuses
	used := 0
	for _, o := range outs {
		if o.Status == http.StatusOK {
			m.Acked(o.Delivery)
		}
		i := 0
		for i < used && byStatus[i].status != o.Status {
			i++
		}
		if i == used {
			if used == len(byStatus) {
				batchRecords.WithLabelValues(m.topic, strconv.Itoa(o.Status)).Inc()
				continue
			}
			byStatus[i].status = o.Status
			used++
		}
		byStatus[i].n++
	}
	for _, s := range byStatus[:used] {
		batchRecords.WithLabelValues(m.topic, strconv.Itoa(s.status)).Add(float64(s.n))
	}
}

// ReadBytes counts a request body.
func (m *Topic) ReadBytes(n int) {
	if m != nil {
		m.body.Add(float64(n))
	}
}

// Acked counts an acknowledged record: its latency and its value's bytes.
func (m *Topic) Acked(d core.Delivery) {
	if m == nil {
		return
	}
	if d.Acked > 0 {
		m.ack.Observe(d.Acked.Seconds())
	}
	m.produced.Add(float64(d.Bytes))
}

// Handler serves the registry: Prometheus text, or OpenMetrics when the scraper asks for it.
var Handler = promhttp.HandlerFor(registry, promhttp.HandlerOpts{EnableOpenMetrics: true})

// coreSnapshot is the JSON document of tg_metrics_json (rust-core/src/metrics.rs).
type coreSnapshot struct {
	Schema struct {
		// BySource: the counters of each registry kind and format that has any.
		BySource []struct {
			Registry      string  `json:"registry"`
			Format        string  `json:"format"`
			Hits          float64 `json:"hits"`
			Misses        float64 `json:"misses"`
			StaleServed   float64 `json:"stale_served"`
			Fetches       float64 `json:"fetches"`
			FetchFailures float64 `json:"fetch_failures"`
		} `json:"by_source"`
		Cached []struct {
			Name       string   `json:"name"`
			Registry   string   `json:"registry"`
			Format     string   `json:"format"`
			Version    *float64 `json:"version"`
			AgeSeconds float64  `json:"age_seconds"`
		} `json:"cached"`
	} `json:"schema"`
	DeliveryErrors []struct {
		Kind   string  `json:"kind"`
		Status int     `json:"status"`
		Count  float64 `json:"count"`
	} `json:"delivery_errors"`
	Producers []producerSnapshot `json:"producers"`
}

type producerSnapshot struct {
	ID              uint64   `json:"id"`
	Bootstrap       string   `json:"bootstrap"`
	StatsAgeSeconds *float64 `json:"stats_age_seconds"`
	QueueMessages   float64  `json:"queue_messages"`
	QueueBytes      float64  `json:"queue_bytes"`
	Brokers         float64  `json:"brokers"`
	BrokersUp       float64  `json:"brokers_up"`
	Retries         float64  `json:"retries"`
	RequestErrors   float64  `json:"request_errors"`
}

// coreMetricsJSON reads the core's snapshot; tests replace it.
var coreMetricsJSON = core.MetricsJSON

// readCoreSnapshot asks the core for its metrics.
func readCoreSnapshot() (*coreSnapshot, error) {
	var s coreSnapshot
	if err := json.Unmarshal(coreMetricsJSON(), &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(metricsPrefix+name, help, labels, nil)
}

var (
	descSchemaLookups  = desc("schema_lookups_total", "Schema cache lookups by outcome: hit, miss (fetched or a remembered not-found), stale_served (cached, refresh due); by registry kind and schema format (unknown: a miss that found none).", "outcome", "registry", "format")
	descSchemaFetches  = desc("schema_registry_fetches_total", "Schema fetches from the registry (first fetches and background refreshes), by registry kind and schema format (unknown: the registry gave none).", "registry", "format")
	descSchemaFailures = desc("schema_registry_fetch_failures_total", "Schema fetches that failed (registry unreachable or refusing, or a schema that does not compile), by registry kind and schema format.", "registry", "format")
	descSchemaAge      = desc("schema_age_seconds", "Seconds since the registry last gave or confirmed the cached schema.", "schema", "registry", "format")
	descSchemaVersion  = desc("schema_version", "Registry version number of the cached schema in use (Glue, Confluent; 0 for a file).", "schema", "registry", "format")
	descDeliveryErrors = desc("delivery_errors_total", "Records the broker did not acknowledge, by librdkafka error kind and the HTTP status they were answered with.", "kind", "status")
	descQueueMessages  = desc("producer_queue_messages", "Records in the producer's queue or in flight (librdkafka msg_cnt).", "producer", "bootstrap")
	descQueueBytes     = desc("producer_queue_bytes", "Bytes of those records (librdkafka msg_size).", "producer", "bootstrap")
	descBrokers        = desc("producer_brokers", "Broker entries of the producer: the bootstrap list and the brokers learnt from metadata.", "producer", "bootstrap")
	descBrokersUp      = desc("producer_broker_connections_up", "Of those, the ones with an open connection (librdkafka state UP).", "producer", "bootstrap")
	descRetries        = desc("producer_retries_total", "Produce requests the producer retried (librdkafka txretries).", "producer", "bootstrap")
	descRequestErrors  = desc("producer_request_errors_total", "Failed requests to brokers, sent and received (librdkafka txerrs + rxerrs).", "producer", "bootstrap")
	descStatsAge       = desc("producer_statistics_age_seconds", "Seconds since the producer's last librdkafka statistics report (statistics.interval.ms).", "producer", "bootstrap")
	descBrokerUp       = desc("broker_up", "1 when every producer of the process has a broker connection up (by its last statistics report; also with no producer), else 0: the readiness probe's broker.up.")
)

// coreCollector turns the core's snapshot into metrics when scraped.
type coreCollector struct{}

func (coreCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSchemaLookups, descSchemaFetches, descSchemaFailures, descSchemaAge, descSchemaVersion,
		descDeliveryErrors, descQueueMessages, descQueueBytes, descBrokers, descBrokersUp, descRetries, descRequestErrors, descStatsAge, descBrokerUp} {
		ch <- d
	}
}

func (coreCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := readCoreSnapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descSchemaLookups, err)
		return
	}
	c := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	// The core lists a registry kind and format only once one of its counters moved (at most
	// 3 × 4 of them).
	for _, src := range s.Schema.BySource {
		c(descSchemaLookups, src.Hits, "hit", src.Registry, src.Format)
		c(descSchemaLookups, src.Misses, "miss", src.Registry, src.Format)
		c(descSchemaLookups, src.StaleServed, "stale_served", src.Registry, src.Format)
		c(descSchemaFetches, src.Fetches, src.Registry, src.Format)
		c(descSchemaFailures, src.FetchFailures, src.Registry, src.Format)
	}
	// The core lists one entry per cache key: core configs that differ (value_format,
	// message_type, registry URL, …) cache the same schema name apart. One series per name,
	// registry kind and format: the highest version, the smallest age.
	type schemaKey struct{ name, registry, format string }
	type schemaState struct{ version, age float64 }
	schemas := map[schemaKey]*schemaState{}
	var keys []schemaKey
	for _, cs := range s.Schema.Cached {
		v := 0.0
		if cs.Version != nil {
			v = *cs.Version
		}
		k := schemaKey{cs.Name, cs.Registry, cs.Format}
		if st, ok := schemas[k]; ok {
			st.version = max(st.version, v)
			st.age = min(st.age, cs.AgeSeconds)
			continue
		}
		schemas[k] = &schemaState{version: v, age: cs.AgeSeconds}
		keys = append(keys, k)
	}
	for _, k := range keys {
		g(descSchemaAge, schemas[k].age, k.name, k.registry, k.format)
		g(descSchemaVersion, schemas[k].version, k.name, k.registry, k.format)
	}
	for _, e := range s.DeliveryErrors {
		c(descDeliveryErrors, e.Count, e.Kind, strconv.Itoa(e.Status))
	}
	up := 1.0
	if len(brokerMissing(s)) > 0 {
		up = 0
	}
	g(descBrokerUp, up)
	for _, p := range s.Producers {
		id := strconv.FormatUint(p.ID, 10)
		g(descQueueMessages, p.QueueMessages, id, p.Bootstrap)
		g(descQueueBytes, p.QueueBytes, id, p.Bootstrap)
		g(descBrokers, p.Brokers, id, p.Bootstrap)
		g(descBrokersUp, p.BrokersUp, id, p.Bootstrap)
		c(descRetries, p.Retries, id, p.Bootstrap)
		c(descRequestErrors, p.RequestErrors, id, p.Bootstrap)
		if p.StatsAgeSeconds != nil {
			g(descStatsAge, *p.StatsAgeSeconds, id, p.Bootstrap)
		}
	}
}

// brokerMissing names each producer of s without a broker connection up (by its last
// statistics report, or none yet).
func brokerMissing(s *coreSnapshot) []string {
	var missing []string
	for _, p := range s.Producers {
		switch {
		case p.StatsAgeSeconds == nil:
			missing = append(missing, "Kafka producer for "+p.Bootstrap+": no connection report yet")
		case p.BrokersUp < 1:
			missing = append(missing, "Kafka producer for "+p.Bootstrap+": no broker connection up")
		}
	}
	return missing
}

// brokerState is the readiness answer's "broker": up when every producer has a connection up.
type brokerState struct {
	Up      bool     `json:"up"`
	Missing []string `json:"missing,omitempty"`
}

// readyAnswer is the readiness probe's body; Missing says why it is not ready.
type readyAnswer struct {
	Ready   bool        `json:"ready"`
	Broker  brokerState `json:"broker"`
	Missing []string    `json:"missing,omitempty"`
}

// Ready answers the readiness probe: whether this gateway can answer publish requests, 200 while
// the broker is unreachable (publish requests then get the plugin's 503 with Retry-After, which
// serves clients better than a gateway taken out of the load balancer), with the broker's state in
// "broker". requireBroker (ready_requires_broker) makes a producer without a broker connection
// up a 503 too. A core whose state cannot be read is never ready.
func Ready(w http.ResponseWriter, r *http.Request, requireBroker bool) {
	var a readyAnswer
	s, err := readCoreSnapshot()
	if err != nil {
		a.Missing = []string{"the core's state could not be read: " + err.Error()}
		a.Broker.Missing = a.Missing
	} else {
		a.Broker.Missing = brokerMissing(s)
		a.Broker.Up = len(a.Broker.Missing) == 0
		if requireBroker {
			a.Missing = a.Broker.Missing
		}
	}
	a.Ready = len(a.Missing) == 0
	status := http.StatusOK
	if !a.Ready {
		status = http.StatusServiceUnavailable
	}
	b, _ := json.Marshal(a)
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	respond.Body(w, status, b)
}
