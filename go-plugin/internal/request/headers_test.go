package request

import (
	"net/http"
	"strings"
	"testing"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

// headerText is hs as "name=value" entries joined with ',', in order.
func headerText(hs []core.Header) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Name + "=" + string(h.Value)
	}
	return strings.Join(parts, ",")
}

func TestParseMessageHeaders(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want string // the headers as headerText gives them, "" = none
		err  string // substring of the error, "" = no error
	}{
		{"absent", nil, "", ""},
		{"blank", []string{"  "}, "", ""},
		{"simple", []string{"k1=v1,k2=v2"}, "k1=v1,k2=v2", ""},
		{"underscore and punctuation (old Lua lost these)", []string{"my_key=my-value.v1/a b"}, "my_key=my-value.v1/a b", ""},
		{"trimmed", []string{"  a = 1 ,\tb=\t2  "}, "a=1,b=2", ""},
		{"percent", []string{"a%2Cb=x%3Dy%2C%20z"}, "a,b=x=y, z", ""},
		{"plus stays", []string{"a=1+1"}, "a=1+1", ""},
		{"empty value", []string{"a="}, "a=", ""},
		{"trailing comma", []string{"a=1,"}, "a=1", ""},
		{"utf8", []string{"ключ=значение"}, "ключ=значение", ""},
		{"two lines", []string{"a=1", "b=2"}, "a=1,b=2", ""},
		{"no equals", []string{"a=1,oops"}, "", `entry "oops" has no '='`},
		{"empty name", []string{" =v"}, "", `empty name`},
		{"second equals", []string{"a=b=c"}, "", `more than one '='`},
		{"bad escape", []string{"a=%zz"}, "", `bad percent-encoding`},
		{"invalid utf8", []string{"a=%ff"}, "", `not valid UTF-8`},
		// Order and duplicates as sent: each entry is a header.
		{"order and duplicates", []string{"b=1,a=2,b=3"}, "b=1,a=2,b=3", ""},
		{"duplicates over lines", []string{"z=1", "z=2"}, "z=1,z=2", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseMessageHeaders(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want it to contain %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if headerText(got) != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestMessageKey(t *testing.T) {
	h := http.Header{}
	if _, ok := messageKey(h); ok {
		t.Fatal("absent header gave a key")
	}
	h.Set("message-key", "  ")
	if _, ok := messageKey(h); ok {
		t.Fatal("blank header gave a key")
	}
	h.Set("message-key", "my key/1")
	if k, ok := messageKey(h); !ok || string(k) != "my key/1" {
		t.Fatalf("got %q %v", k, ok)
	}
}
