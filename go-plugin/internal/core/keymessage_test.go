package core

import "testing"

func TestKeyMessageNamesTheKeyAsTheClientSentIt(t *testing.T) {
	for _, c := range []struct{ msg, label, want string }{
		{"key: field `id`: invalid type", "message-key", "message-key: field `id`: invalid type"},
		{"key: missing; …", "message-key", "message-key: missing; …"},
		{"key: field `id`: invalid type", "", "key: field `id`: invalid type"},
		{"key is 5000 bytes, the limit is 4096", "message-key", "key is 5000 bytes, the limit is 4096"},
		{"field `key`: invalid type", "message-key", "field `key`: invalid type"},
	} {
		if got := KeyMessage(c.msg, c.label); got != c.want {
			t.Errorf("KeyMessage(%q, %q) = %q, want %q", c.msg, c.label, got, c.want)
		}
	}
}
