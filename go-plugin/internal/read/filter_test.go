package read

import (
	"encoding/json"
	"testing"
)

// A key filter compares text: a text key as given, a key decoded by a key schema only when it
// decoded to a string; a record without a key never matches, not even an empty filter.
func TestKeyFilterMatchesTextKeysOnly(t *testing.T) {
	want := func(s string) filter { return filter{key: &s} }
	entryOf := func(key string) entry {
		var e entry
		if err := json.Unmarshal([]byte(`{"partition":0,"offset":1,"key":`+key+`}`), &e); err != nil {
			t.Fatalf("entry with key %s: %v", key, err)
		}
		return e
	}
	cases := []struct {
		key, filter string
		keeps       bool
	}{
		{`"k1"`, "k1", true},
		{`"k1"`, "k2", false},
		{`{"site":"s","shard":1}`, "s", false},
		{`null`, "", false},
		{`"k\u00e9"`, "ké", true},
	}
	for _, c := range cases {
		if got := want(c.filter).keeps(entryOf(c.key)); got != c.keeps {
			t.Errorf("key %s, filter %q: keeps %v, want %v", c.key, c.filter, got, c.keeps)
		}
	}
	var e entry
	if err := json.Unmarshal([]byte(`{"partition":0,"offset":1}`), &e); err != nil || want("").keeps(e) {
		t.Errorf("a record without a key field kept by an empty key filter (err %v)", err)
	}
}
