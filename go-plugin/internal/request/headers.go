package request

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/topicgate/topicgate/go-plugin/internal/core"
)

const (
	// headerKey carries the record key.
	headerKey = "Message-Key"
	// KeyHeader is the key header's name as errors about the key say it.
	KeyHeader = "message-key"
	// headerHeaders carries the record headers: "k1=v1,k2=v2".
	headerHeaders = "Message-Headers"
)

// parseMessageHeaders parses the value(s) of the message-headers request header into the
// record headers, in the order sent (duplicates kept), or nil when there are none.
//
// Entries are separated by ','; an entry is name '=' value; a name and a value may hold
// any character except ',' and '=', which are written percent-encoded (%2C, %3D), as can
// be any other byte; blanks (space, tab) around names and values are trimmed before
// decoding. Blank entries (as after a trailing comma) are ignored. An entry without '=',
// with a second raw '=', with an empty name, with a bad %-escape, or that is not UTF-8
// after decoding, is an error naming that entry. A name may repeat: each entry is a header.
// Repeated header lines are joined with ',' as HTTP says.
func parseMessageHeaders(values []string) ([]core.Header, error) {
	if len(values) == 0 {
		return nil, nil
	}
	joined := strings.Join(values, ",")
	var out []core.Header
	for _, entry := range strings.Split(joined, ",") {
		if strings.Trim(entry, " \t") == "" {
			continue
		}
		shown := strings.Trim(entry, " \t")
		eq := strings.IndexByte(entry, '=')
		if eq < 0 {
			return nil, fmt.Errorf("message-headers: entry %q has no '=' (write name=value; encode ',' as %%2C and '=' as %%3D)", shown)
		}
		rawName, rawValue := entry[:eq], entry[eq+1:]
		if strings.IndexByte(rawValue, '=') >= 0 {
			return nil, fmt.Errorf("message-headers: entry %q has more than one '=' (encode '=' in a value as %%3D)", shown)
		}
		name, err := decodeHeaderPart(strings.Trim(rawName, " \t"))
		if err != nil {
			return nil, fmt.Errorf("message-headers: entry %q: name: %v", shown, err)
		}
		if name == "" {
			return nil, fmt.Errorf("message-headers: entry %q has an empty name", shown)
		}
		value, err := decodeHeaderPart(strings.Trim(rawValue, " \t"))
		if err != nil {
			return nil, fmt.Errorf("message-headers: entry %q: value: %v", shown, err)
		}
		out = append(out, core.Header{Name: name, Value: []byte(value)})
	}
	return out, nil
}

func decodeHeaderPart(s string) (string, error) {
	if strings.IndexByte(s, '%') >= 0 {
		d, err := url.PathUnescape(s) // '%XX' only; '+' stays '+'
		if err != nil {
			return "", fmt.Errorf("bad percent-encoding in %q", s)
		}
		s = d
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%q is not valid UTF-8 once decoded", s)
	}
	return s, nil
}

// messageKey returns the record key from the message-key header; ok is false when
// the header is absent or blank (the record then has no key).
func messageKey(h http.Header) (key []byte, ok bool) {
	v := strings.Trim(h.Get(headerKey), " \t")
	if v == "" {
		return nil, false
	}
	return []byte(v), true
}
