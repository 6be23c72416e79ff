package main

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

func TestAnswerByEndsBeforeTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	parent, _ := ctx.Deadline()
	waitCtx, stop := answerBy(ctx)
	defer stop()
	got, ok := waitCtx.Deadline()
	if !ok || parent.Sub(got) < 90*time.Millisecond || parent.Sub(got) > 110*time.Millisecond {
		t.Fatalf("deadline %v before the request's, want about 100 ms", parent.Sub(got))
	}
	if !strings.Contains(endedMessage(ctx), "endpoint timeout) is about to pass") {
		t.Fatalf("live request: %q", endedMessage(ctx))
	}
	// No deadline: the wait ends with the request, and says why.
	ctx2, cancel2 := context.WithCancel(context.Background())
	waitCtx2, stop2 := answerBy(ctx2)
	defer stop2()
	if _, ok := waitCtx2.Deadline(); ok {
		t.Fatal("a request without a deadline got one")
	}
	cancel2()
	<-waitCtx2.Done()
	if msg := endedMessage(ctx2); !strings.Contains(msg, "the request ended (context canceled)") {
		t.Fatalf("cancelled request: %q", msg)
	}
}
