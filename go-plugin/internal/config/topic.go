package config

import (
	"fmt"
	"strings"
)

// MaxTopicLen is Kafka's limit on topic name length.
const MaxTopicLen = 249

// CheckTopicName accepts only names Kafka accepts: 1 to 249 characters from
// [a-zA-Z0-9._-], and neither "." nor "..".
func CheckTopicName(t string) error {
	if t == "" {
		return fmt.Errorf("empty topic name")
	}
	if len(t) > MaxTopicLen {
		return fmt.Errorf("topic name longer than %d characters", MaxTopicLen)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic name %q is not allowed", t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("topic name %q has a character Kafka does not allow (only letters, digits, '.', '_' and '-')", t)
		}
	}
	return nil
}

// TopicFor returns the topic a request path names under rc: the last path segment,
// case-sensitive. When rc has a prefix, the path must be exactly prefix + topic. The
// error text is safe to send to the client (status 404).
func TopicFor(rc *Route, path string) (string, error) {
	var topic string
	if rc.Prefix != "" {
		if !strings.HasPrefix(path, rc.Prefix) {
			return "", fmt.Errorf("no topic is exposed at %q", path)
		}
		topic = path[len(rc.Prefix):]
		if strings.Contains(topic, "/") {
			return "", fmt.Errorf("no topic is exposed at %q (expected %s<topic>)", path, rc.Prefix)
		}
	} else {
		topic = path[strings.LastIndexByte(path, '/')+1:]
	}
	if topic == "" {
		return "", fmt.Errorf("the path %q names no topic", path)
	}
	if err := CheckTopicName(topic); err != nil || !rc.Allows(topic) {
		return "", fmt.Errorf("topic %q is not exposed here", topic)
	}
	return topic, nil
}
