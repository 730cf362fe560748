package docket_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/docket/docket/internal/docket"
)

// The intake path parses every POST /requests body and encodes one message
// per accepted request; each worker decodes it. These benchmarks are the
// baseline to compare a change against with benchstat.

func BenchmarkParseSubmission(b *testing.B) {
	tests := []struct {
		name string
		body []byte
		want docket.Type
	}{
		{"echo/string64", []byte(`{"type":"echo","payload":"` + strings.Repeat("x", 64) + `"}`), docket.TypeEcho},
		{"echo/object4KiB", nestedEchoBody(b, 4096), docket.TypeEcho},
		{"sleep", []byte(`{"type":"sleep","payload":{"ms":250}}`), docket.TypeSleep},
		{"cpu", []byte(`{"type":"cpu","payload":{"iterations":100000}}`), docket.TypeCPU},
		{"fail", []byte(`{"type":"fail","payload":{"times":2}}`), docket.TypeFail},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			if s, err := docket.ParseSubmission(tt.body); err != nil || s.Type != tt.want {
				b.Fatalf("ParseSubmission(%s) = %v, %v; want type %s", tt.body, s.Type, err, tt.want)
			}
			b.SetBytes(int64(len(tt.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := docket.ParseSubmission(tt.body); err != nil {
					b.Fatalf("ParseSubmission: %v", err)
				}
			}
		})
	}
}

// nestedEchoBody returns an echo body whose payload is a compact JSON object
// of nested objects, arrays, strings (one with an escape), numbers, booleans
// and nulls, of at least size bytes: a client's order, say.
func nestedEchoBody(b *testing.B, size int) []byte {
	b.Helper()
	var items []any
	payload := map[string]any{"order": "A-1042", "customer": map[string]any{"name": "Zoë", "vip": true}, "items": &items}
	for n := 0; ; n++ {
		body, err := json.Marshal(map[string]any{"type": "echo", "payload": payload})
		if err != nil {
			b.Fatalf("marshal: %v", err)
		}
		if len(body) >= size {
			return body
		}
		items = append(items, map[string]any{
			"sku":   fmt.Sprintf("SKU-%05d", n),
			"qty":   n%7 + 1,
			"price": 12.5 + float64(n),
			"tags":  []string{"red", "large", "a<b"},
			"meta":  map[string]any{"gift": n%2 == 0, "note": nil, "dims": []float64{1.5, 20, -3.25}},
		})
	}
}

func BenchmarkMessageEncode(b *testing.B) {
	m := docket.Message{ID: testID, UserID: testUserID, Seq: 7, Type: docket.TypeSleep}
	b.ReportAllocs()
	for b.Loop() {
		m.Encode()
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	body := docket.Message{ID: testID, UserID: testUserID, Seq: 7, Type: docket.TypeSleep}.Encode()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := docket.DecodeMessage(body); err != nil {
			b.Fatalf("DecodeMessage: %v", err)
		}
	}
}
