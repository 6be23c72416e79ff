package main

import (
	"encoding/json"
	"math"
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
	deliveries := []delivery{{0, 0}, {2, 42}, {-1, -1}, {math.MaxInt32, math.MaxInt64}, {7, 1 << 40}}
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
