package respond

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// appendOK writes exactly what json.Marshal writes for the same okBody.
func TestAppendOKIsJSONMarshal(t *testing.T) {
	topics := []string{"MyTopic", "a", "orders.v1_eu-west-1"}
	long := make([]byte, config.MaxTopicLen)
	for i := range long {
		long[i] = "aZ09._-"[i%7]
	}
	topics = append(topics, string(long))
	deliveries := []core.Delivery{{Partition: 0, Offset: 0}, {Partition: 2, Offset: 42}, {Partition: -1, Offset: -1},
		{Partition: math.MaxInt32, Offset: math.MaxInt64}, {Partition: 7, Offset: 1 << 40}}
	for _, topic := range topics {
		if err := config.CheckTopicName(topic); err != nil {
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

func TestDryRunAnswerSaysNothingWasPublished(t *testing.T) {
	w := httptest.NewRecorder()
	OK(w, "MyTopic", core.Delivery{Partition: -1, Offset: -1})
	want := `{"statusCode":"200","message":"valid; not published (dry_run)","topic":"MyTopic","partition":-1,"offset":-1}`
	if got := w.Body.String(); got != want {
		t.Fatalf("body %s", got)
	}
}
