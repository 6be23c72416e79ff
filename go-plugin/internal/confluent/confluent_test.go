package confluent

import (
	"bytes"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/config"
	"github.com/topicgate/topicgate/go-plugin/internal/core"
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
		k        v3Data
		jsonKeys bool // the core has a key_schema
		want     string
		err      string
	}{
		{v3Data{Type: str("BINARY"), Data: []byte(`"Zm9vYmFy"`)}, false, "foobar", ""},
		{v3Data{Type: str("string"), Data: []byte(`"s"`)}, false, "s", ""},
		{v3Data{Data: []byte(`"untyped"`)}, false, "untyped", ""},
		{v3Data{Data: []byte(` {"a":1} `)}, false, `{"a":1}`, ""},
		{v3Data{Type: str("BINARY"), Data: []byte(`"%%"`)}, false, "", "not base64"},
		{v3Data{Type: str("AVRO"), Data: []byte(`"x"`)}, false, "", "needs a key schema"},
		{v3Data{Type: str("XML"), Data: []byte(`"x"`)}, true, "", "not supported"},
		// With key_schema the key is its JSON text, untyped or typed with a schema format.
		{v3Data{Data: []byte(`"untyped"`)}, true, `"untyped"`, ""},
		{v3Data{Type: str("avro"), Data: []byte(` {"id":1} `)}, true, `{"id":1}`, ""},
		{v3Data{Type: str("STRING"), Data: []byte(`"{\"id\":1}"`)}, true, `{"id":1}`, ""},
	} {
		got, _, err := v3Key(&c.k, c.jsonKeys)
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

// A value's type and schema fields become the core's selector, or Confluent's error naming the
// field: exclusive pairs, strategies that need a schema, raw schemas, types without a schema.
func TestV3ValueSchema(t *testing.T) {
	str := func(s string) *string { return &s }
	num := func(n int64) *int64 { return &n }
	for _, c := range []struct {
		name string
		v    v3Data
		sel  string // the selector's JSON; "" none
		typ  string
		code int
		msg  string
	}{
		{"no fields", v3Data{}, "", "", 0, ""},
		{"type only", v3Data{Type: str("avro")}, `{"format":"AVRO"}`, "AVRO", 0, ""},
		{"by id", v3Data{Type: str("JSONSCHEMA"), SchemaID: num(7)}, `{"format":"JSONSCHEMA","schema_id":7}`, "JSONSCHEMA", 0, ""},
		{"id with a record strategy", v3Data{SchemaID: num(7), SubjectNameStrategy: str("RECORD_NAME")}, `{"schema_id":7}`, "", 0, ""},
		{"by version", v3Data{SchemaVersion: num(2)}, `{"version":2}`, "", 0, ""},
		{"by subject", v3Data{Subject: str("s-value"), SchemaVersion: num(1)}, `{"subject":"s-value","version":1}`, "", 0, ""},
		{"topic strategy", v3Data{SubjectNameStrategy: str("TOPIC_NAME")}, `{"subject":"T-value"}`, "", 0, ""},
		{"id and version", v3Data{SchemaID: num(1), SchemaVersion: num(1)}, "", "", v3BadRequest, "Only one of 'schema_id', 'schema_version'"},
		{"subject and strategy", v3Data{Subject: str("s"), SubjectNameStrategy: str("TOPIC_NAME")}, "", "", v3BadRequest, "Only one of 'subject_name_strategy' or 'subject'"},
		{"record strategy without id", v3Data{SubjectNameStrategy: str("RECORD_NAME"), SchemaVersion: num(1)}, "", "", v3BadRequest, "subject_name_strategy=RECORD_NAME without schema_id"},
		{"unknown strategy", v3Data{SubjectNameStrategy: str("NOPE")}, "", "", v3BadRequest, "value.subject_name_strategy"},
		{"raw schema", v3Data{Type: str("AVRO"), Schema: str(`"string"`)}, "", "", v3BadRequest, "value.schema: raw schemas are not supported"},
		{"bad id", v3Data{SchemaID: num(0)}, "", "", v3BadRequest, "value.schema_id"},
		{"bad version", v3Data{SchemaVersion: num(-1)}, "", "", v3BadRequest, "value.schema_version"},
		{"empty subject", v3Data{Subject: str("")}, "", "", v3BadRequest, "value.subject"},
		{"schemaless type", v3Data{Type: str("BINARY")}, "", "", v3SerializationErr, "value.type"},
	} {
		sel, typ, code, msg := v3ValueSchema(&c.v, "T")
		if string(sel) != c.sel || code != c.code || (c.code == 0 && typ != c.typ) || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %s %q %d %q", c.name, sel, typ, code, msg)
		}
	}
	if _, _, err := v3Key(&v3Data{SchemaID: func() *int64 { n := int64(1); return &n }(), Data: []byte(`"k"`)}, true); err == nil || !strings.Contains(err.Error(), "not supported for keys") {
		t.Errorf("key with a schema id: %v", err)
	}
}

func TestV3AnswerNamesTheFormatsTheCoreEncodedWith(t *testing.T) {
	meta := v3Meta{keyType: "JSON", keySize: 8}
	o := core.Outcome{Status: 200, Delivery: core.Delivery{Bytes: 12, ValueFormat: "AVRO", KeyFormat: "JSONSCHEMA", KeyBytes: 24}}
	a := v3Answer("c", "T", &meta, o)
	if *a.Value != (v3Size{Type: "AVRO", Size: 12}) || *a.Key != (v3Size{Type: "JSONSCHEMA", Size: 24}) {
		t.Errorf("core's formats: value %+v key %+v", *a.Value, *a.Key)
	}
	// A core that names none (a stand-in publisher): the request's type, else PROTOBUF; the key as sent.
	o.Delivery.ValueFormat, o.Delivery.KeyFormat = "", ""
	a = v3Answer("c", "T", &meta, o)
	if a.Value.Type != "PROTOBUF" || *a.Key != (v3Size{Type: "JSON", Size: 8}) {
		t.Errorf("no formats: value %+v key %+v", *a.Value, *a.Key)
	}
}
