package main

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

// appendOK writes exactly what json.Marshal writes for the same okBody.
func TestAppendOKIsJSONMarshal(t *testing.T) {
	topics := []string{"MyTopic", "a", "orders.v1_eu-west-1"}
	long := make([]byte, maxTopicLen)
	for i := range long {
		long[i] = "aZ09._-"[i%7]
	}
	topics = append(topics, string(long))
	deliveries := []delivery{{Partition: 0, Offset: 0}, {Partition: 2, Offset: 42}, {Partition: -1, Offset: -1},
		{Partition: math.MaxInt32, Offset: math.MaxInt64}, {Partition: 7, Offset: 1 << 40}}
	for _, topic := range topics {
		if err := checkTopicName(topic); err != nil {
			t.Fatal(err)
		}
		for _, d := range deliveries {
			msg := "ok"
			if d.Partition < 0 {
				msg = dryRunMessage
			}
			want, _ := json.Marshal(okBody{StatusCode: "200", Message: msg, Topic: topic, Partition: d.Partition, Offset: d.Offset})
			if got := appendOK(nil, topic, d); string(got) != string(want) {
				t.Errorf("appendOK(%q, %+v) = %s, want %s", topic, d, got, want)
			}
		}
	}
}

// A batch answer is exactly json.Marshal of its batchBody, with each record's batchResult.
func TestBatchAnswerIsJSONMarshal(t *testing.T) {
	ok := func(p int32, o int64) outcome { return outcome{status: 200, d: delivery{Partition: p, Offset: o}} }
	bad := func(st int, msg string) outcome { return outcome{status: st, msg: msg} }
	cases := [][]outcome{
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
			e := batchResult{Line: lines[i].n, StatusCode: strconv.Itoa(o.status)}
			if o.status == 200 {
				e.Partition, e.Offset = &results[i].d.Partition, &results[i].d.Offset
			} else {
				e.Message = lineMessage(lines[i].n, o.msg)
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
