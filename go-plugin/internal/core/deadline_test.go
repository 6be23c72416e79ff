package core

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAnswerMargin(t *testing.T) {
	cases := map[time.Duration]time.Duration{
		time.Millisecond:       minAnswerMargin, // never below the floor
		300 * time.Millisecond: 30 * time.Millisecond,
		time.Second:            100 * time.Millisecond,
		15 * time.Second:       maxAnswerMargin, // never above the cap
	}
	for left, want := range cases {
		if got := answerMargin(left); got != want {
			t.Errorf("answerMargin(%v) = %v, want %v", left, got, want)
		}
	}
}

func TestAnswerWithinEndsBeforeTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	wait, ok := answerWithin(ctx)
	if !ok || wait < 890*time.Millisecond || wait > 900*time.Millisecond {
		t.Fatalf("wait %v (%v), want about 900 ms: 100 ms before the deadline", wait, ok)
	}
	if !strings.Contains(endedMessage(ctx), "endpoint timeout) is about to pass") {
		t.Fatalf("live request: %q", endedMessage(ctx))
	}
	// No deadline: no early answer; a cancelled request says why it ended.
	ctx2, cancel2 := context.WithCancel(context.Background())
	if _, ok := answerWithin(ctx2); ok {
		t.Fatal("a request without a deadline got one")
	}
	cancel2()
	if msg := endedMessage(ctx2); !strings.Contains(msg, "the request ended (context canceled)") {
		t.Fatalf("cancelled request: %q", msg)
	}
}
