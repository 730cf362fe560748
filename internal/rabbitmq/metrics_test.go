package rabbitmq

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestMetricsExposed(t *testing.T) {
	t.Parallel()
	p := newPublisher(t, testConfig(t, 1))
	if err := p.Publish(context.Background(), "0", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	out := buf.String()
	for _, want := range []string{
		`docket_amqp_publish_seconds_bucket{le="0.0005"}`,
		`docket_amqp_publish_seconds_bucket{le="5"}`,
		`docket_amqp_publishes_total{outcome="ack"}`,
		`docket_amqp_publishes_total{outcome="not_connected"}`,
		`docket_amqp_confirms_in_flight`,
		`docket_amqp_reconnects_total{role="publisher"}`,
		`docket_amqp_connected{role="publisher"}`,
		`docket_amqp_blocked`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
