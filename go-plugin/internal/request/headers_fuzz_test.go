package request

import (
	"strings"
	"testing"
)

// FuzzParseMessageHeaders checks parseMessageHeaders on arbitrary header lines (one or two, as
// repeated header lines arrive). The seeds run in every plain `go test`; `make fuzz` mutates them.
//
// Properties: an error starts with "message-headers: " and comes with no output; otherwise there is
// output exactly when some entry is not blank, it is a JSON object of string values with one member
// per non-blank entry, no empty name, and percent-encoding every name and value and parsing that
// again gives the same object.
func FuzzParseMessageHeaders(f *testing.F) {
	for _, seed := range []struct {
		first, second string
		two           bool
	}{
		{"k1=v1,k2=v2", "", false},
		{"my_key=my-value.v1/a b", "", false},
		{"  a = 1 ,\tb=\t2  ", "", false},
		{"a%2Cb=x%3Dy%2C%20z", "", false},
		{"a=1+1,", "", false},
		{"ключ=значение", "", false},
		{"a=1", "b=2", true},
		{"a=1,oops", "", false},
		{" =v", "", false},
		{"a=b=c", "", false},
		{"a=%zz", "", false},
		{"a=%ff", "", false},
		{"a=1", "a=2", true},
		{",, ,", "", false},
		{"", "", true},
	} {
		f.Add(seed.first, seed.second, seed.two)
	}
	f.Fuzz(func(t *testing.T, first, second string, two bool) {
		lines := []string{first}
		if two {
			lines = append(lines, second)
		}
		out, err := parseMessageHeaders(lines)
		if err != nil {
			if out != nil {
				t.Fatalf("output %q with error %v", out, err)
			}
			if !strings.HasPrefix(err.Error(), "message-headers: ") {
				t.Fatalf("error does not name the header: %v", err)
			}
			return
		}
		entries := 0
		for _, e := range strings.Split(strings.Join(lines, ","), ",") {
			if strings.Trim(e, " \t") != "" {
				entries++
			}
		}
		if entries == 0 {
			if out != nil {
				t.Fatalf("output %q for blank input", out)
			}
			return
		}
		if len(out) != entries {
			t.Fatalf("%d entries gave %d headers: %q", entries, len(out), out)
		}
		var again []string
		for _, h := range out {
			if h.Name == "" {
				t.Fatalf("empty name in %q", out)
			}
			again = append(again, percentEncodeAll(h.Name)+"="+percentEncodeAll(string(h.Value)))
		}
		out2, err := parseMessageHeaders([]string{strings.Join(again, ",")})
		if err != nil {
			t.Fatalf("re-encoded headers rejected: %v", err)
		}
		if headerText(out2) != headerText(out) {
			t.Fatalf("round trip changed the headers: %q -> %q", out, out2)
		}
	})
}

// percentEncodeAll writes every byte that is not a letter or digit as %XX.
func percentEncodeAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
