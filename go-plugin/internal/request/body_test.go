package request

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
		buf, err := readBody(iotest.OneByteReader(strings.NewReader(c.in)), -1, c.limit)
		if err != nil || string(*buf) != c.want {
			t.Errorf("readBody(%d bytes, %d) = %d bytes, %v; want %d bytes", len(c.in), c.limit, len(*buf), err, len(c.want))
		}
		Release(buf)
	}
	boom := errors.New("boom")
	buf, err := readBody(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), -1, 10)
	if !errors.Is(err, boom) || !bytes.Equal(*buf, []byte("ab")) {
		t.Fatalf("got %q, %v; want the bytes before the error and the error", *buf, err)
	}
	Release(buf)
	// A reused buffer starts empty.
	buf, _ = readBody(strings.NewReader("z"), 1, 10)
	if string(*buf) != "z" {
		t.Fatalf("reused buffer: %q", *buf)
	}
}

// An announced length is taken in one allocation, up to bodyBufPresizeMax; a body longer than it
// announced, or than the presize, still reads whole.
func TestReadBodyPresizesFromTheAnnouncedLength(t *testing.T) {
	for _, n := range []int{0, 100 << 10, bodyBufPresizeMax, bodyBufPresizeMax + 5000} {
		in := strings.Repeat("y", n)
		buf, err := readBody(strings.NewReader(in), int64(n), int64(n)+10)
		if err != nil || string(*buf) != in {
			t.Fatalf("n %d: %d bytes, %v", n, len(*buf), err)
		}
		if n > bodyBufInitial && n <= bodyBufPresizeMax && cap(*buf) != n+1 {
			t.Errorf("n %d: capacity %d, want %d (one allocation, no growing)", n, cap(*buf), n+1)
		}
		// Not kept in the pool: the next buffer may be any of them, and this test needs its own.
	}
	buf, err := readBody(strings.NewReader("abcdef"), 2, 10) // more than announced
	if err != nil || string(*buf) != "abcdef" {
		t.Fatalf("got %q, %v", *buf, err)
	}
}
