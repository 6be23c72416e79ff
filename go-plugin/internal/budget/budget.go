// Package budget bounds the bytes of request bodies the process holds in memory at once. There is
// one budget, Bodies, for every route, both mountings and every plugin block: memory is per
// process, and without a bound a gateway's buffered bodies grow with its concurrency (16 MiB
// batches × connections).
package budget

import "sync/atomic"

// Default is the budget unless the server block's max_buffered_body_bytes sets another: a fixed
// size, not one derived from the routes' limits, so that the bound is what the operator sizes the
// container for (16 batches of the default 16 MiB, or thousands of usual requests, at once).
const Default = 256 << 20

// Refusal says why Take did not reserve.
type Refusal int

const (
	// Taken: the bytes are reserved.
	Taken Refusal = iota
	// Busy: they do not fit now, other requests hold the budget (503: may fit later).
	Busy
	// TooLarge: the request's bytes exceed the whole budget (413: never fit).
	TooLarge
)

// Budget is a bound on bytes held at once; the zero value has no room (use New).
type Budget struct {
	limit atomic.Int64
	used  atomic.Int64
}

// New returns a budget of limit bytes.
func New(limit int64) *Budget {
	b := &Budget{}
	b.limit.Store(limit)
	return b
}

// Bodies is the process's budget of buffered request bodies.
var Bodies = New(Default)

// SetLimit changes the bound; bytes already held stay held.
func (b *Budget) SetLimit(limit int64) { b.limit.Store(limit) }

// Limit is the bound in bytes.
func (b *Budget) Limit() int64 { return b.limit.Load() }

// InUse is the bytes held now.
func (b *Budget) InUse() int64 { return b.used.Load() }

// Take reserves n more bytes for a request that already holds held of them. Nothing is reserved
// unless it answers Taken.
func (b *Budget) Take(held, n int64) Refusal {
	limit := b.limit.Load()
	if held+n > limit {
		return TooLarge
	}
	for {
		u := b.used.Load()
		if u+n > limit {
			return Busy
		}
		if b.used.CompareAndSwap(u, u+n) {
			return Taken
		}
	}
}

// Give hands back n bytes taken before.
func (b *Budget) Give(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}
