package confluent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
)

func TestConfluentPath(t *testing.T) {
	rc := &config.Route{Prefix: "/kafka/v3/", Topics: map[string]bool{"T": true}, Confluent: true}
	cluster, topic, batch, err := confluentPath(rc, "/kafka/v3/clusters/c1/topics/T/records:batch")
	if err != nil || cluster != "c1" || topic != "T" || !batch {
		t.Fatalf("%q %q %v %v", cluster, topic, batch, err)
	}
	if _, topic, _, err := confluentPath(rc, "/kafka/v3/clusters/c1/topics/Other/records"); err != nil || topic != "" {
		t.Fatalf("unexposed topic: %q %v", topic, err)
	}
	for _, bad := range []string{"/kafka/v3/clusters/c1/topics/T", "/kafka/v3/x/clusters/c1/topics/T/records", "/kafka/v3/clusters/c1/topic/T/records"} {
		if _, _, _, err := confluentPath(rc, bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	rc.ClusterID = "mine"
	if _, _, _, err := confluentPath(rc, "/kafka/v3/clusters/c1/topics/T/records"); err == nil || !strings.Contains(err.Error(), `cluster "c1" not found`) {
		t.Errorf("foreign cluster: %v", err)
	}
	client := &config.Route{Topics: map[string]bool{"T": true}, Confluent: true} // client mode: no prefix
	if _, topic, _, err := confluentPath(client, "/clusters/c/topics/T/records"); err != nil || topic != "T" {
		t.Errorf("client mode: %q %v", topic, err)
	}
}

func TestV3KeyAndHeaders(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		k    v3Data
		want string
		err  string
	}{
		{v3Data{Type: str("BINARY"), Data: []byte(`"Zm9vYmFy"`)}, "foobar", ""},
		{v3Data{Type: str("string"), Data: []byte(`"s"`)}, "s", ""},
		{v3Data{Data: []byte(`"untyped"`)}, "untyped", ""},
		{v3Data{Data: []byte(` {"a":1} `)}, `{"a":1}`, ""},
		{v3Data{Type: str("BINARY"), Data: []byte(`"%%"`)}, "", "not base64"},
		{v3Data{Type: str("AVRO"), Data: []byte(`"x"`)}, "", "not supported"},
	} {
		got, _, err := v3Key(&c.k)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v", c.k.Data, err)
			}
		} else if err != nil || string(got) != c.want {
			t.Errorf("%s: %q %v", c.k.Data, got, err)
		}
	}
	v := "SGVhZGVyLTE="
	h, err := v3Headers([]v3Header{{Name: "a", Value: &v}, {Name: "a", Value: nil}})
	if err != nil || len(h) != 2 || h[0].Name != "a" || string(h[0].Value) != "Header-1" || h[1].Name != "a" || len(h[1].Value) != 0 {
		t.Errorf("headers %q %v", h, err)
	}
	// Values are bytes: base64 of 00 ff 80 is passed on as those three bytes.
	binary := "AP+A"
	h, err = v3Headers([]v3Header{{Name: "b", Value: &binary}, {Name: "a", Value: &v}, {Name: "b", Value: &v}})
	if err != nil || len(h) != 3 || !bytes.Equal(h[0].Value, []byte{0x00, 0xff, 0x80}) || h[1].Name != "a" || h[2].Name != "b" {
		t.Errorf("binary header: %q %v", h, err)
	}
}

func TestV3RequestLimits(t *testing.T) {
	if _, code, msg := v3Requests([]byte(`{"entries":[{"id":1,"value":{"data":{}}}]}`), true, 5); code != v3BatchErr || !strings.Contains(msg, "not a valid string") {
		t.Errorf("numeric id: %d %s", code, msg)
	}
	if _, code, _ := v3Requests([]byte(`{"value":{"data":{}}}{"value":{"data":{}}}`), false, 1); code != v3TooLarge {
		t.Errorf("too many concatenated records: %d", code)
	}
	reqs, code, _ := v3Requests([]byte(`{"value":{"data":{}}} {"value":{"data":{}}}`), false, 5)
	if code != 0 || len(reqs) != 2 {
		t.Errorf("concatenated: %d %d", code, len(reqs))
	}
	if v3HTTPStatus(42207) != 422 || v3HTTPStatus(50302) != 503 || v3HTTPStatus(400) != 400 {
		t.Error("http status of error codes")
	}
}

// Core statuses become Confluent's error codes; a partition the topic lacks is 40402, not a
// serialization error, and a refused authorization 40301.
func TestV3ErrorCodes(t *testing.T) {
	for _, c := range []struct {
		status int
		msg    string
		want   int
	}{
		{400, "sample_message: expected string", v3SerializationErr},
		{400, "partition 99: the topic has no such partition on the Kafka cluster", v3PartitionNotFound},
		{403, "Kafka denied the write", v3Forbidden},
		{404, "topic", v3TopicNotFound},
		{503, "down", v3BrokerUnavailable},
		{504, "late", v3KafkaRetriable},
		{500, "fault", v3KafkaError},
	} {
		if got := v3ErrorCode(c.status, c.msg); got != c.want {
			t.Errorf("%d %q: %d, want %d", c.status, c.msg, got, c.want)
		}
		if got := v3HTTPStatus(c.want); c.want > 1000 && got != c.want/100 {
			t.Errorf("%d: HTTP %d", c.want, got)
		}
	}
}
