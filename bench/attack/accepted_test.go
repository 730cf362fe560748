package attack

import (
	"encoding/json"
	"testing"
)

var acceptedCases = []string{
	`{"id":"0193f1a2-7c4e-7b8a-9d2e-3f4a5b6c7d8e","seq":123456,"status":"queued"}`,
	` { "status" : "queued" , "seq" : 7 , "id" : "a" } `,
	"{\n\t\"id\": \"x\",\r\n\"seq\": -0}\n",
	`{}`,
	`{"seq":1}`,
	`{"id":"","seq":1}`,
	`{"id":"a","id":"b","seq":1,"seq":2}`,
	`{"ID":"upper","seq":1}`,
	`{"Seq":5,"id":"a"}`,
	`{"id":"a\u0062","seq":1}`,
	`{"id":"a\"b","seq":1}`,
	`{"id":"é","seq":1}`,
	"{\"id\":\"\xff\",\"seq\":1}",
	"{\"\u212a\":1,\"id\":\"k\"}",
	`{"id":null,"seq":null}`,
	`{"id":1,"seq":1}`,
	`{"id":"a","seq":"1"}`,
	`{"id":"a","seq":1.5}`,
	`{"id":"a","seq":1e3}`,
	`{"id":"a","seq":01}`,
	`{"id":"a","seq":9223372036854775808}`,
	`{"id":"a","seq":-9223372036854775808}`,
	`{"id":"a","seq":1,"extra":{"nested":[1,2]}}`,
	`{"id":"a","seq":1,"n":123456789012345678901234567890}`,
	`{"id":"a","seq":1,"t":true,"f":false,"z":null,"x":-3}`,
	`{"id":"a","seq":1,"t":tru}`,
	`{"id":"a","seq":1,}`,
	`{"id":"a","seq":1} x`,
	`{"id":"a" "seq":1}`,
	`{"id":"a","seq":1`,
	`{"id":"a\tb","seq":1}`,
	`[]`,
	`null`,
	``,
	"\xef\xbb\xbf{}",
	`{"status":"overloaded","error":{"code":"overloaded"}}`,
}

// parseAccepted gives what json.Unmarshal gives, for bodies of every kind.
func TestParseAcceptedMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, body := range acceptedCases {
		checkAccepted(t, []byte(body))
	}
}

func FuzzParseAccepted(f *testing.F) {
	for _, body := range acceptedCases {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAccepted(t, body)
	})
}

func checkAccepted(t *testing.T, body []byte) {
	t.Helper()
	var want struct {
		ID  string `json:"id"`
		Seq int64  `json:"seq"`
	}
	wantErr := json.Unmarshal(body, &want)
	id, seq, err := parseAccepted(body)
	if id != want.ID || seq != want.Seq || (err == nil) != (wantErr == nil) {
		t.Errorf("parseAccepted(%q) = %q, %d, %v; json.Unmarshal: %q, %d, %v", body, id, seq, err, want.ID, want.Seq, wantErr)
	}
	if _, _, ok := scanAccepted(body); ok && wantErr != nil {
		t.Errorf("scanAccepted(%q) took a body json.Unmarshal refuses: %v", body, wantErr)
	}
}

func BenchmarkParseAccepted(b *testing.B) {
	body := []byte(acceptedBody)
	b.ReportAllocs()
	for b.Loop() {
		if id, _, err := parseAccepted(body); err != nil || id == "" {
			b.Fatal(id, err)
		}
	}
}
