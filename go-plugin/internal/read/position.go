package read

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Positions are the next offset to read per partition: the whole state of a reader, carried by
// the client (an SSE event id, the paged form's next position).
type Positions map[int32]int64

// String is the event id format: "<partition>:<next offset>" for every partition, comma-separated,
// by partition ("0:12,1:4"), so a reconnect resumes exactly after the event.
func (p Positions) String() string {
	parts := make([]int32, 0, len(p))
	for k := range p {
		parts = append(parts, k)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	var b strings.Builder
	for i, k := range parts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(int64(k), 10))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(p[k], 10))
	}
	return b.String()
}

// maxPositions bounds the partitions one position string may name.
const maxPositions = 10000

// ParsePositions reads the event id format; the error says what is wrong (the caller names the field).
func ParsePositions(s string) (Positions, error) {
	if s == "" {
		return nil, fmt.Errorf("is empty")
	}
	items := strings.Split(s, ",")
	if len(items) > maxPositions {
		return nil, fmt.Errorf("names more than %d partitions", maxPositions)
	}
	out := Positions{}
	for _, it := range items {
		ps, os, ok := strings.Cut(it, ":")
		if !ok {
			return nil, fmt.Errorf("item %q is not <partition>:<offset>", clip(it))
		}
		p, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("partition %q is not a partition number", clip(ps))
		}
		o, err := strconv.ParseInt(os, 10, 64)
		if err != nil || o < 0 {
			return nil, fmt.Errorf("offset %q of partition %d is not an offset", clip(os), p)
		}
		if _, dup := out[int32(p)]; dup {
			return nil, fmt.Errorf("partition %d appears twice", p)
		}
		out[int32(p)] = o
	}
	return out, nil
}

// clip keeps a client's text short in an error message.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
