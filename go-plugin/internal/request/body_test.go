package request

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/topicgate/topicgate/go-plugin/internal/budget"
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
		buf, err := readBody(iotest.OneByteReader(strings.NewReader(c.in)), -1, c.limit, nil)
		if err != nil || string(buf.b) != c.want {
			t.Errorf("readBody(%d bytes, %d) = %d bytes, %v; want %d bytes", len(c.in), c.limit, len(buf.b), err, len(c.want))
		}
		Release(buf)
	}
	boom := errors.New("boom")
	buf, err := readBody(io.MultiReader(strings.NewReader("ab"), iotest.ErrReader(boom)), -1, 10, nil)
	if !errors.Is(err, boom) || !bytes.Equal(buf.b, []byte("ab")) {
		t.Fatalf("got %q, %v; want the bytes before the error and the error", buf.b, err)
	}
	Release(buf)
	// A reused buffer starts empty.
	buf, _ = readBody(strings.NewReader("z"), 1, 10, nil)
	if string(buf.b) != "z" {
		t.Fatalf("reused buffer: %q", buf.b)
	}
}

// An announced length is taken in one allocation, up to bodyBufPresizeMax; a body longer than it
// announced, or than the presize, still reads whole.
func TestReadBodyPresizesFromTheAnnouncedLength(t *testing.T) {
	for _, n := range []int{0, 100 << 10, bodyBufPresizeMax, bodyBufPresizeMax + 5000} {
		in := strings.Repeat("y", n)
		buf, err := readBody(strings.NewReader(in), int64(n), int64(n)+10, nil)
		if err != nil || string(buf.b) != in {
			t.Fatalf("n %d: %d bytes, %v", n, len(buf.b), err)
		}
		if n > bodyBufInitial && n <= bodyBufPresizeMax && cap(buf.b) != n+1 {
			t.Errorf("n %d: capacity %d, want %d (one allocation, no growing)", n, cap(buf.b), n+1)
		}
		// Not kept in the pool: the next buffer may be any of them, and this test needs its own.
	}
	buf, err := readBody(strings.NewReader("abcdef"), 2, 10, nil) // more than announced
	if err != nil || string(buf.b) != "abcdef" {
		t.Fatalf("got %q, %v", buf.b, err)
	}
}

// withBodies gives the test a budget.Bodies of limit bytes, and puts the old limit back after it.
func withBodies(t *testing.T, limit int64) {
	old := budget.Bodies.Limit()
	budget.Bodies.SetLimit(limit)
	t.Cleanup(func() { budget.Bodies.SetLimit(old) })
	if budget.Bodies.InUse() != 0 {
		t.Fatalf("%d bytes of the budget held before the test", budget.Bodies.InUse())
	}
}

func post(body string, announced bool) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/t", strings.NewReader(body))
	if !announced {
		r.ContentLength = -1 // chunked: the length is known only at the end
	}
	return r
}

func routeTooLarge(limit int64) string { return fmt.Sprintf("route limit %d", limit) }

// An announced body takes its length of the budget before it is read, and holds it until Release;
// one that does not fit now is 503, one larger than the whole budget 413, both naming the limit,
// and a refused request holds nothing.
func TestBodyHoldsTheBudgetUntilRelease(t *testing.T) {
	withBodies(t, 100)
	for _, announced := range []bool{true, false} {
		body, held, status, _ := Body(post(strings.Repeat("a", 70), announced), 1000, routeTooLarge, nil)
		if status != 0 || len(body) != 70 || budget.Bodies.InUse() != 70 {
			t.Fatalf("announced %v: status %d, %d bytes, %d in use; want 0, 70, 70", announced, status, len(body), budget.Bodies.InUse())
		}
		_, buf, status, msg := Body(post(strings.Repeat("b", 31), announced), 1000, routeTooLarge, nil)
		Release(buf)
		if status != http.StatusServiceUnavailable || !strings.Contains(msg, "100 bytes") || !strings.Contains(msg, "max_buffered_body_bytes") {
			t.Fatalf("announced %v, 31 bytes with 30 free: %d %q; want 503 naming the limit", announced, status, msg)
		}
		if budget.Bodies.InUse() != 70 {
			t.Fatalf("announced %v: the refused request left %d in use, want 70", announced, budget.Bodies.InUse())
		}
		_, buf, status, msg = Body(post(strings.Repeat("c", 101), announced), 1000, routeTooLarge, nil)
		Release(buf)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "larger than the gateway's limit of 100 bytes") {
			t.Fatalf("announced %v, 101 bytes: %d %q; want 413 naming the budget", announced, status, msg)
		}
		Release(held)
		if budget.Bodies.InUse() != 0 {
			t.Fatalf("announced %v: %d in use after Release, want 0", announced, budget.Bodies.InUse())
		}
		// With the budget back, the same 31 bytes fit.
		body, buf, status, _ = Body(post(strings.Repeat("b", 31), announced), 1000, routeTooLarge, nil)
		if status != 0 || len(body) != 31 {
			t.Fatalf("announced %v: after Release: %d, %d bytes", announced, status, len(body))
		}
		Release(buf)
	}
	// The route's limit is checked first (by the announced length): its own 413, nothing held.
	_, buf, status, msg := Body(post(strings.Repeat("d", 60), true), 50, routeTooLarge, nil)
	Release(buf)
	if status != http.StatusRequestEntityTooLarge || msg != "route limit 50" || budget.Bodies.InUse() != 0 {
		t.Fatalf("over the route limit: %d %q, %d in use", status, msg, budget.Bodies.InUse())
	}
}

// An unannounced body is reserved as its bytes arrive: one that outgrows the free budget stops
// being read there (503), and what it had taken is handed back.
func TestUnannouncedBodyIsReservedAsItArrives(t *testing.T) {
	withBodies(t, 10)
	buf, err := readBody(iotest.OneByteReader(strings.NewReader("0123456789ABC")), -1, 1000, budget.Bodies)
	var over overBudget
	if !errors.As(err, &over) || over.why != budget.TooLarge || len(buf.b) != 11 || budget.Bodies.InUse() != 10 {
		t.Fatalf("err %v, %d bytes read, %d in use; want TooLarge after the 11th byte, 10 held", err, len(buf.b), budget.Bodies.InUse())
	}
	Release(buf)
	if budget.Bodies.InUse() != 0 {
		t.Fatalf("%d in use after Release", budget.Bodies.InUse())
	}
}
