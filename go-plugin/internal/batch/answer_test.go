package batch

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// A batch answer is exactly json.Marshal of its batchBody, with each record's batchResult.
func TestBatchAnswerIsJSONMarshal(t *testing.T) {
	ok := func(p int32, o int64) core.Outcome {
		return core.Outcome{Status: 200, Delivery: core.Delivery{Partition: p, Offset: o}}
	}
	bad := func(st int, msg string) core.Outcome { return core.Outcome{Status: st, Msg: msg} }
	cases := [][]core.Outcome{
		{ok(0, 0)},
		{ok(2, 42), ok(math.MaxInt32, math.MaxInt64), ok(-1, -1)},
		{ok(1, 7), bad(400, `field "x": <not> & "quoted" \ é`), bad(503, "broker down")},
		{bad(504, "timed out"), bad(504, "timed out")},
		{bad(503, "a"), bad(504, "b")},
	}
	for _, results := range cases {
		lines := make([]batchLine, len(results))
		want := batchBody{Topic: "orders.v1", Records: make([]batchResult, len(results))}
		for i, o := range results {
			lines[i].n = 2*i + 1
			e := batchResult{Line: lines[i].n, StatusCode: strconv.Itoa(o.Status)}
			if o.Status == 200 {
				e.Partition, e.Offset = &results[i].Delivery.Partition, &results[i].Delivery.Offset
			} else {
				e.Message = lineMessage(lines[i].n, o.Msg)
			}
			want.Records[i] = e
		}
		status, msg, got := batchAnswer("orders.v1", lines, results, false)
		want.StatusCode, want.Message = strconv.Itoa(status), msg
		wantJSON, _ := json.Marshal(want)
		if string(got) != string(wantJSON) {
			t.Errorf("batchAnswer = %s\nwant %s", got, wantJSON)
		}
	}
}
