package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBody(t *testing.T) {
	big := strings.Repeat("x", 3*bodyBufInitial+17) // grows past the first buffer
	for _, c := range []struct {
		in    string
		limit int64
		want  string
	}{
		{"", 10, ""},
		{"abc", 10, "abc"},
		{"0123456789", 10, "0123456789"},
		{"0123456789AB", 10, "0123456789A"}, // limit+1 bytes: the caller sees it is too large
		{big, int64(len(big)), big},
	} {
		// One byte per Read: the loop must not depend on a reader filling the buffer.
		buf, err := readBody(iotest.OneByteReader(strings.NewReader(c.in)), c.limit)
		if err != nil || string(*buf) != c.want {
			t.Errorf("readBody(%d bytes, %d) = %d bytes, %v; want %d bytes", len(c.in), c.limit, len(*buf), err, len(c.want))
		}
		releaseBody(buf)
	}
	boom := errors.New("boom")
	buf, err := readBody(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), 10)
	if !errors.Is(err, boom) || !bytes.Equal(*buf, []byte("ab")) {
		t.Fatalf("got %q, %v; want the bytes before the error and the error", *buf, err)
	}
	releaseBody(buf)
	// A reused buffer starts empty.
	buf, _ = readBody(strings.NewReader("z"), 10)
	if string(*buf) != "z" {
		t.Fatalf("reused buffer: %q", *buf)
	}
}
