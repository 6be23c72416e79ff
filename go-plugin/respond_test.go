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
