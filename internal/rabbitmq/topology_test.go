package rabbitmq

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDeclareTopology(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, 4)
	vhost := vhostOf(t, cfg.URL)
	conn, err := amqp.Dial(cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // idempotent
		if err := DeclareTopology(ch, cfg.Partitions, 7); err != nil {
			t.Fatalf("DeclareTopology #%d: %v", i+1, err)
		}
	}

	type queueInfo struct {
		Durable   bool           `json:"durable"`
		Type      string         `json:"type"`
		Arguments map[string]any `json:"arguments"`
	}
	for i := range cfg.Partitions {
		var q queueInfo
		manage(t, http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"/"+url.PathEscape(PartitionQueue(i)), &q)
		if !q.Durable || q.Type != "quorum" {
			t.Errorf("%s: durable=%v type=%q, want durable quorum", PartitionQueue(i), q.Durable, q.Type)
		}
		want := map[string]any{
			"x-queue-type":             "quorum",
			"x-single-active-consumer": true,
			"x-delivery-limit":         float64(7),
			"x-dead-letter-exchange":   DeadLetterExchange,
		}
		for k, v := range want {
			if q.Arguments[k] != v {
				t.Errorf("%s: argument %s = %v, want %v", PartitionQueue(i), k, q.Arguments[k], v)
			}
		}
	}
	var dead queueInfo
	manage(t, http.MethodGet, "/api/queues/"+url.PathEscape(vhost)+"/"+DeadLetterQueue, &dead)
	if !dead.Durable || dead.Type != "quorum" {
		t.Errorf("%s: durable=%v type=%q, want durable quorum", DeadLetterQueue, dead.Durable, dead.Type)
	}

	type binding struct {
		Destination string `json:"destination"`
		RoutingKey  string `json:"routing_key"`
	}
	var bindings []binding
	manage(t, http.MethodGet, "/api/exchanges/"+url.PathEscape(vhost)+"/"+RequestsExchange+"/bindings/source", &bindings)
	var got []string
	for _, b := range bindings {
		got = append(got, b.RoutingKey+"->"+b.Destination)
	}
	sort.Strings(got)
	want := []string{"0->docket.requests.0", "1->docket.requests.1", "2->docket.requests.2", "3->docket.requests.3"}
	if len(got) != len(want) {
		t.Fatalf("bindings of %s = %v, want %v", RequestsExchange, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bindings of %s = %v, want %v", RequestsExchange, got, want)
		}
	}
	var deadBindings []binding
	manage(t, http.MethodGet, "/api/exchanges/"+url.PathEscape(vhost)+"/"+DeadLetterExchange+"/bindings/source", &deadBindings)
	if len(deadBindings) != 1 || deadBindings[0].Destination != DeadLetterQueue {
		t.Errorf("bindings of %s = %+v, want one to %s", DeadLetterExchange, deadBindings, DeadLetterQueue)
	}

	depths, err := Depths(context.Background(), cfg.URL, cfg.Partitions)
	if err != nil {
		t.Fatalf("Depths: %v", err)
	}
	if len(depths) != cfg.Partitions {
		t.Fatalf("Depths = %v, want %d zeros", depths, cfg.Partitions)
	}

	// Another delivery limit is another queue: the broker refuses it
	// rather than silently keeping the old one.
	if err := DeclareTopology(ch, cfg.Partitions, 8); err == nil {
		t.Fatal("DeclareTopology with another delivery limit succeeded, want PRECONDITION_FAILED")
	}
}
