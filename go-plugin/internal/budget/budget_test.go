package budget

import (
	"sync"
	"testing"
)

func TestTakeAndGive(t *testing.T) {
	b := New(100)
	if r := b.Take(0, 60); r != Taken || b.InUse() != 60 {
		t.Fatalf("take 60: %v, in use %d", r, b.InUse())
	}
	if r := b.Take(0, 41); r != Busy || b.InUse() != 60 {
		t.Fatalf("take 41 of the 40 left: %v, in use %d; want Busy, nothing taken", r, b.InUse())
	}
	if r := b.Take(0, 40); r != Taken || b.InUse() != 100 {
		t.Fatalf("take the 40 left: %v, in use %d", r, b.InUse())
	}
	if r := b.Take(0, 101); r != TooLarge {
		t.Fatalf("more than the whole budget: %v; want TooLarge, not Busy", r)
	}
	// A request that holds 60 and wants 41 more would need more than the whole budget.
	if r := b.Take(60, 41); r != TooLarge {
		t.Fatalf("held 60 + 41: %v; want TooLarge", r)
	}
	b.Give(60)
	b.Give(40)
	if b.InUse() != 0 {
		t.Fatalf("in use after giving all back: %d", b.InUse())
	}
	b.SetLimit(10)
	if r := b.Take(0, 11); r != TooLarge || b.Limit() != 10 {
		t.Fatalf("after SetLimit(10): %v, limit %d", r, b.Limit())
	}
}

// Concurrent takers never hold more than the limit together, and all of it comes back.
func TestConcurrentTakersStayWithinTheLimit(t *testing.T) {
	const limit, takers, rounds = 1000, 8, 2000
	b := New(limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	peak := int64(0)
	for i := 0; i < takers; i++ {
		wg.Add(1)
		go func(n int64) {
			defer wg.Done()
			for j := 0; j < rounds; j++ {
				if b.Take(0, n) == Taken {
					u := b.InUse()
					mu.Lock()
					peak = max(peak, u)
					mu.Unlock()
					b.Give(n)
				}
			}
		}(int64(100 + 50*i))
	}
	wg.Wait()
	if peak > limit || b.InUse() != 0 {
		t.Fatalf("peak %d (limit %d), in use at the end %d", peak, limit, b.InUse())
	}
}
