package docket

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Message is what the API publishes for each accepted request and a worker
// consumes. The database row stays the source of truth; the message says
// which row to run and where it stands in its user's order, and carries the
// payload when it is small (at most MaxInlinePayload bytes), so that a
// worker need not read the row to run it.
type Message struct {
	ID      uuid.UUID       `json:"id"`
	UserID  uuid.UUID       `json:"user_id"`
	Seq     int64           `json:"seq"`
	Type    Type            `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// MaxInlinePayload is the largest payload a message carries; a larger one
// is read from the database by the worker.
const MaxInlinePayload = 4096

// WithPayload returns m carrying payload if it is small enough to inline.
func (m Message) WithPayload(payload json.RawMessage) Message {
	if len(payload) > 0 && len(payload) <= MaxInlinePayload {
		m.Payload = payload
	}
	return m
}

// Encode returns the message's wire form (JSON).
func (m Message) Encode() []byte {
	b, _ := json.Marshal(m) // cannot fail: fixed types
	return b
}

// DecodeMessage parses a message's wire form.
func DecodeMessage(body []byte) (Message, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Message{}, fmt.Errorf("decode message: %w", err)
	}
	if m.ID == uuid.Nil || m.UserID == uuid.Nil || m.Seq < 1 {
		return Message{}, fmt.Errorf("decode message: id, user_id and seq >= 1 are required")
	}
	if len(m.Payload) > MaxInlinePayload {
		return Message{}, fmt.Errorf("decode message: payload over %d bytes", MaxInlinePayload)
	}
	return m, nil
}

// Partition returns the partition (0 to partitions-1) that carries the
// user's requests. All of one user's requests go to one partition, which one
// consumer at a time reads in order.
func Partition(userID uuid.UUID, partitions int) int {
	h := fnv.New32a()
	_, _ = h.Write(userID[:])
	return int(h.Sum32() % uint32(partitions))
}

// RoutingKey is the routing key of a partition on the requests exchange.
func RoutingKey(partition int) string { return strconv.Itoa(partition) }

// TimeFormat is the contract's time format: RFC 3339 in UTC with exactly
// six fractional digits.
const TimeFormat = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t in TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }
