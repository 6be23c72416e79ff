package metrics

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of a request carrying an Idempotency-Key that did not simply write (package idempotency).
const (
	IdemReplayed = "replayed" // a repeat answered with the kept answer, nothing written
	IdemWaited   = "waited"   // a repeat waited for its key's first request in flight
	IdemConflict = "conflict" // a repeat refused: a different request (422), or still in flight at its deadline (409)
	IdemEvicted  = "evicted"  // a key dropped before its window ended, to keep to idempotency.max_keys
	// IdemFoundWritten: a retry after a 504 found the first attempt's record written and answered with it.
	IdemFoundWritten = "found_written"
	// IdemTakenOver: with the shared log, a replica took a key over from one whose request ended
	// without an answer (released, or silent past its delivery timeout) and nothing was found written.
	IdemTakenOver = "taken_over"
)

var (
	idempotencyTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricsPrefix + "idempotency_total",
		Help: "Requests carrying an Idempotency-Key that were replayed, waited, refused or found already written, and keys evicted early, by outcome.",
	}, []string{"outcome"})
	idempotencyKeys = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: metricsPrefix + "idempotency_keys",
		Help: "Idempotency keys remembered now (in flight or answered), all routes.",
	})
)

func init() {
	registry.MustRegister(idempotencyTotal, idempotencyKeys)
	for _, o := range []string{IdemReplayed, IdemWaited, IdemConflict, IdemEvicted, IdemFoundWritten, IdemTakenOver} {
		idempotencyTotal.WithLabelValues(o) // every outcome is scraped, 0 until it happens
	}
}

// Idempotency counts one outcome (IdemReplayed, …).
func Idempotency(outcome string) { idempotencyTotal.WithLabelValues(outcome).Inc() }

// IdempotencyKeys adds delta to the keys remembered.
func IdempotencyKeys(delta int) { idempotencyKeys.Add(float64(delta)) }
