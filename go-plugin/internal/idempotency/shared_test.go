package idempotency

import (
	"encoding/json"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// recs makes a key's log records at offsets 0, 1, …
func recs(t *testing.T, vs ...logRecord) []core.IntentRecord {
	out := make([]core.IntentRecord, len(vs))
	for i, v := range vs {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = core.IntentRecord{Offset: int64(i), Value: b}
	}
	return out
}

func of(o int64) *int64 { return &o }

func TestResolveTheEarliestIntentOwnsTheKeyAndTheFirstAnswerIsFinal(t *testing.T) {
	a, o := resolve(recs(t, logRecord{Kind: kindIntent, FP: "x"}, logRecord{Kind: kindIntent, FP: "y"}))
	if a != nil || o == nil || o.offset != 0 || o.rec.FP != "x" {
		t.Fatalf("owner %+v answer %+v", o, a)
	}
	a, _ = resolve(recs(t, logRecord{Kind: kindIntent, FP: "x"}, logRecord{Kind: kindAnswer, FP: "x", Status: 200},
		logRecord{Kind: kindAnswer, FP: "x", Status: 201}))
	if a == nil || a.Status != 200 {
		t.Fatalf("answer %+v, want the first", a)
	}
}

func TestResolveTheEarliestTakeoverOfTheOwnerWinsAndReleasesAreSeen(t *testing.T) {
	_, o := resolve(recs(t,
		logRecord{Kind: kindIntent, FP: "x"},                  // 0: owner
		logRecord{Kind: kindIntent, FP: "x"},                  // 1: a waiter
		logRecord{Kind: kindRelease, FP: "x", Of: of(0)},      // 2: the owner gave up, nothing written
		logRecord{Kind: kindIntent, FP: "x", Of: of(0)},       // 3: first takeover: wins
		logRecord{Kind: kindIntent, FP: "x", Of: of(0)},       // 4: later takeover of 0: loses
		logRecord{Kind: kindRelease, FP: "x", Of: of(0)},      // 5: about 0, no longer the owner
		logRecord{Kind: "something else", FP: "x", Of: of(3)}, // 6: ignored
	))
	if o == nil || o.offset != 3 || o.released {
		t.Fatalf("owner %+v, want the takeover at 3, not released", o)
	}
	_, o = resolve(recs(t, logRecord{Kind: kindIntent, FP: "x"},
		logRecord{Kind: kindRelease, FP: "x", Of: of(0), Unknown: true}))
	if o == nil || !o.released || !o.unknown {
		t.Fatalf("owner %+v, want released unknown", o)
	}
}
