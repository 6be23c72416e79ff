package core

import (
	"context"
	"sync/atomic"
)

// Watch, put in a request's context with WithWatch, learns what became of the request's single
// record (package idempotency settles a key with it): Publish notes its answer's status, and
// when it stopped waiting before the broker answered (the early 504 at the request's deadline) it
// sets Pending and the record's real outcome follows on Late once its delivery report arrives.
type Watch struct {
	Late    chan Outcome // buffered: the late outcome, when Pending
	pending atomic.Bool
	status  atomic.Int32
}

// NewWatch makes a Watch.
func NewWatch() *Watch { return &Watch{Late: make(chan Outcome, 1)} }

// Pending says the record was still in flight when Publish answered: its outcome follows on Late.
func (w *Watch) Pending() bool { return w.pending.Load() }

// Status is the status Publish answered with (0: Publish was not called).
func (w *Watch) Status() int { return int(w.status.Load()) }

type watchCtx struct{}

// WithWatch returns ctx carrying w for the publish of its request's record.
func WithWatch(ctx context.Context, w *Watch) context.Context {
	return context.WithValue(ctx, watchCtx{}, w)
}

// watchOf is ctx's Watch, or nil.
func watchOf(ctx context.Context) *Watch {
	w, _ := ctx.Value(watchCtx{}).(*Watch)
	return w
}

// note records the status Publish answers with, if ctx carries a Watch, and passes it on.
func note(ctx context.Context, status int) int {
	if w := watchOf(ctx); w != nil {
		w.status.Store(int32(status))
	}
	return status
}
