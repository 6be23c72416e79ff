package main

import (
	"context"
	"time"
)

// Bounds of the head start a request with a deadline keeps for its answer.
const (
	minAnswerMargin = 5 * time.Millisecond
	maxAnswerMargin = 200 * time.Millisecond
)

// answerMargin is how long before a request's deadline the plugin stops waiting for the broker:
// a tenth of the time left, between 5 ms and 200 ms. Why: KrakenD drops a backend answer that
// arrives after its endpoint timeout and sends a bare 500 instead, so the plugin's 504 must
// travel back through KrakenD's backend pipeline before the deadline, not at it.
func answerMargin(left time.Duration) time.Duration {
	return min(max(left/10, minAnswerMargin), maxAnswerMargin)
}

// answerBy returns a context that ends answerMargin before ctx's deadline, or with ctx when it
// has none. When it has ended but ctx has not, the deadline is near: answer now.
func answerBy(ctx context.Context) (waitCtx context.Context, cancel context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-answerMargin(time.Until(deadline))))
}

// endedMessage says why a wait for the broker stopped: ctx ended (client gone, or a deadline with
// no margin left), or its deadline is about to pass.
func endedMessage(ctx context.Context) string {
	why := "the request's deadline (the gateway's endpoint timeout) is about to pass"
	if err := ctx.Err(); err != nil {
		why = "the request ended (" + err.Error() + ")"
	}
	return why + " before the broker acknowledged the record; it may still be written"
}
