package rabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/docket/docket/internal/testenv"
)

// testConfig is a config on a fresh vhost with fast redials.
func testConfig(t testing.TB, partitions int) Config {
	t.Helper()
	return Config{
		URL:          testenv.Vhost(t),
		Partitions:   partitions,
		ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
		Name:         "test-" + strings.ReplaceAll(t.Name(), "/", "-"),
	}.WithDefaults()
}

// testLogger writes to the test's log (see testenv.Logger).
func testLogger(t testing.TB) *slog.Logger { return testenv.Logger(t, slog.LevelDebug) }

// newPublisher starts a publisher, waits until it is ready, and closes it
// when the test ends.
func newPublisher(t testing.TB, cfg Config) *Publisher {
	t.Helper()
	p := NewPublisher(cfg, testLogger(t))
	t.Cleanup(func() { _ = p.Close() })
	testenv.Eventually(t, 10*time.Second, p.Ready, "publisher not ready")
	return p
}

type handleFunc = func(ctx context.Context, partition int, deliveries <-chan amqp.Delivery)

// runningConsumer is a Consumer whose Run runs in the background.
type runningConsumer struct {
	*Consumer
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// stop cancels Run and waits for it to return.
func (rc *runningConsumer) stop(t testing.TB) {
	t.Helper()
	rc.cancel()
	select {
	case <-rc.done:
		if rc.err != nil {
			t.Errorf("Run returned %v, want nil", rc.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return 15s after cancel")
	}
}

// startConsumer runs a consumer until the test ends (or stop) and waits
// until it consumes.
func startConsumer(t testing.TB, cfg Config, handle handleFunc) *runningConsumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rc := &runningConsumer{Consumer: NewConsumer(cfg, testLogger(t)), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		rc.err = rc.Run(ctx, handle)
	}()
	t.Cleanup(func() { rc.stop(t) })
	testenv.Eventually(t, 10*time.Second, rc.Connected, "consumer not connected")
	return rc
}

// ackAll is a handle that records every delivery and acks it.
func ackAll(record func(partition int, d amqp.Delivery)) handleFunc {
	return func(_ context.Context, partition int, deliveries <-chan amqp.Delivery) {
		for d := range deliveries {
			record(partition, d)
			_ = d.Ack(false)
		}
	}
}

// testMessage is the body the tests publish.
type testMessage struct {
	G   int    `json:"g"`
	Seq int    `json:"seq"`
	ID  string `json:"id"`
}

func (m testMessage) encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

func decodeTestMessage(t testing.TB, body []byte) testMessage {
	var m testMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Errorf("decode %q: %v", body, err)
	}
	return m
}

// vhostOf returns the vhost of an AMQP URL.
func vhostOf(t testing.TB, amqpURL string) string {
	t.Helper()
	u, err := amqp.ParseURI(amqpURL)
	if err != nil {
		t.Fatalf("parse %s: %v", amqpURL, err)
	}
	return u.Vhost
}

// manage calls the management API and decodes a JSON answer into out.
func manage(t testing.TB, method, path string, out any) {
	t.Helper()
	if err := tryManage(method, path, "", out); err != nil {
		t.Fatal(err)
	}
}

func tryManage(method, path, body string, out any) error {
	base, err := url.Parse(testenv.ManagementURL())
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, base.Scheme+"://"+base.Host+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if base.User != nil {
		pw, _ := base.User.Password()
		req.SetBasicAuth(base.User.Username(), pw)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

type mgmtConnection struct {
	Name             string         `json:"name"`
	ClientProperties map[string]any `json:"client_properties"`
}

// connections lists the vhost's client connections.
func connections(t testing.TB, vhost string) []mgmtConnection {
	t.Helper()
	var conns []mgmtConnection
	manage(t, http.MethodGet, "/api/vhosts/"+url.PathEscape(vhost)+"/connections", &conns)
	return conns
}

// waitConnections waits until the vhost lists connections named each of
// names (connection_name), and returns those.
func waitConnections(t testing.TB, vhost string, names ...string) []mgmtConnection {
	t.Helper()
	var found []mgmtConnection
	testenv.Eventually(t, 15*time.Second, func() bool {
		found = found[:0]
		for _, c := range connections(t, vhost) {
			for _, n := range names {
				if c.ClientProperties["connection_name"] == n {
					found = append(found, c)
				}
			}
		}
		return len(found) == len(names)
	}, "connections %v not listed in vhost %s", names, vhost)
	return found
}

// killConnection closes a client connection from the broker's side, which
// is what the client sees when the broker restarts.
func killConnection(t testing.TB, name string) {
	t.Helper()
	manage(t, http.MethodDelete, "/api/connections/"+url.PathEscape(name), nil)
}
