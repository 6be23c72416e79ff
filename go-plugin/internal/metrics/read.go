package metrics

import "github.com/prometheus/client_golang/prometheus"

// Why an event stream ended on the gateway's side (package read).
const (
	CutStall    = "stall"    // its client took no bytes for read.max_stall_ms
	CutShutdown = "shutdown" // the gateway stopped
	CutError    = "error"    // a fetch failed (Kafka, the registry)
	CutSlow     = "slow"     // its client fell read.max_client_buffer_bytes of events behind
)

var (
	readReaders = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricsPrefix + "read_readers",
		Help: "Pages being read and event streams open now, by mode (page, sse).",
	}, []string{"mode"})
	readRecords = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "read_records_total",
		Help: "Records sent to readers (page entries and events, decode errors included), by topic.",
	}, []string{"topic"})
	readBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "read_bytes_total",
		Help: "Bytes of record JSON sent to readers, by topic.",
	}, []string{"topic"})
	readDecodeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "read_decode_failures_total",
		Help: "Records sent as an error because their value did not decode, by topic.",
	}, []string{"topic"})
	readCuts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "read_stream_cuts_total",
		Help: "Event streams the gateway ended, by reason (stall, slow, shutdown, error).",
	}, []string{"reason"})
	readFollowers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricsPrefix + "read_followers",
		Help: "Followers running now: one per topic read by event streams of every partition and one per partition read by partition= streams, sharing their fetches.",
	})
	readFollowerFetches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "read_follower_fetches_total",
		Help: "Fetch rounds of the followers (each reads the partitions it follows once for all its streams), by topic.",
	}, []string{"topic"})
	readLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metricsPrefix + "read_lag_records",
		Help: "Records a topic's most lagging follower is behind the ends of the partitions it reads after its last round (event streams at the tail lag as much), by topic.",
	}, []string{"topic"})
)

func init() {
	registry.MustRegister(readReaders, readRecords, readBytes, readDecodeFailures, readCuts, readFollowers, readFollowerFetches, readLag)
	for _, m := range []string{"page", "sse"} {
		readReaders.WithLabelValues(m)
	}
	for _, r := range []string{CutStall, CutSlow, CutShutdown, CutError} {
		readCuts.WithLabelValues(r)
	}
}

// ReaderIn counts a page or stream (mode "page" or "sse") begun; the returned func counts it ended.
func ReaderIn(mode string) (out func()) {
	g := readReaders.WithLabelValues(mode)
	g.Inc()
	return g.Dec
}

// ReadSent counts one record of topic sent to a reader as n bytes of JSON; failed: as a decode error.
func ReadSent(topic string, n int, failed bool) {
	readRecords.WithLabelValues(topic).Inc()
	readBytes.WithLabelValues(topic).Add(float64(n))
	if failed {
		readDecodeFailures.WithLabelValues(topic).Inc()
	}
}

// ReadCut counts an event stream the gateway ended, by reason (CutStall, …).
func ReadCut(reason string) { readCuts.WithLabelValues(reason).Inc() }

// ReadFollowers counts followers started (+1) and stopped (-1).
func ReadFollowers(d float64) { readFollowers.Add(d) }

// ReadFollowerFetch counts one fetch round of topic's follower.
func ReadFollowerFetch(topic string) { readFollowerFetches.WithLabelValues(topic).Inc() }

// ReadLag sets how many records topic's follower is behind the partitions' ends.
func ReadLag(topic string, records int64) { readLag.WithLabelValues(topic).Set(float64(records)) }

// ReadLagGone drops topic's lag once its follower stops.
func ReadLagGone(topic string) { readLag.DeleteLabelValues(topic) }
