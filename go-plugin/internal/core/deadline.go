package core

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

// answerWithin is how long a request may wait for the broker before it must be answered:
// until answerMargin before ctx's deadline. ok is false when ctx has no deadline.
func answerWithin(ctx context.Context) (wait time.Duration, ok bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	left := time.Until(deadline)
	return left - answerMargin(left), true
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
