package config

import (
	"regexp"
	"strings"
	"testing"
)

func TestCheckTopicName(t *testing.T) {
	for _, ok := range []string{"MyTopic", "a", "orders.v1", "my_topic-2", strings.Repeat("x", 249)} {
		if err := CheckTopicName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a b", "a/b", "é", "a%2F", strings.Repeat("x", 250)} {
		if err := CheckTopicName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestTopicFor(t *testing.T) {
	rc := &Route{Prefix: "/v1/event/", Topics: map[string]bool{"MyTopic": true}, Pattern: regexp.MustCompile(`^(?:orders-.*)$`)}
	good := map[string]string{
		"/v1/event/MyTopic":   "MyTopic",
		"/v1/event/orders-eu": "orders-eu",
	}
	for path, want := range good {
		got, err := TopicFor(rc, path)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v", path, got, err)
		}
	}
	for _, path := range []string{
		"/v1/event/mytopic",    // case-sensitive
		"/v1/event/Other",      // not exposed
		"/v1/event/",           // no topic
		"/v1/event/x/MyTopic",  // nested: the old "any path ending in a topic" defect
		"/v1/event/MyTopic/",   // trailing slash
		"/v1/event/orders-a b", // illegal name even though the pattern matches
		"/v2/event/MyTopic",    // other prefix
	} {
		if got, err := TopicFor(rc, path); err == nil {
			t.Errorf("%s: accepted as %q", path, got)
		}
	}
	// client mode: no prefix, last segment
	cl := &Route{Topics: map[string]bool{"MyTopic": true}}
	if got, err := TopicFor(cl, "/anything/MyTopic"); err != nil || got != "MyTopic" {
		t.Errorf("client: got %q %v", got, err)
	}
}
