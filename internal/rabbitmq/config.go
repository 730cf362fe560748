package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Config configures the publisher and the consumer. The zero value plus
// WithDefaults serves a broker on localhost.
type Config struct {
	// URL is the broker's AMQP URL, vhost included.
	// Default amqp://guest:guest@127.0.0.1:5672/.
	URL string

	// Partitions is the number of partition queues (docket.requests.0 …
	// docket.requests.{P-1}). The API and every worker must agree on it.
	// Default 16.
	Partitions int

	// DeliveryLimit is each partition queue's x-delivery-limit: a message
	// delivered more often than this is dead-lettered to docket.requests.dead.
	// It is a queue argument, so changing it for existing queues needs the
	// queues deleted first (the broker refuses a redeclaration with other
	// arguments). Default 10.
	DeliveryLimit int

	// PublishChannels is the number of confirm-mode channels in the
	// publisher's pool, all on its one publishing connection. Default 8.
	PublishChannels int

	// ConfirmWindow caps the unconfirmed publishes per publishing channel.
	// Throughput tops out at a few hundred. Default 256.
	ConfirmWindow int

	// PublishTimeout is the longest Publish waits for a channel and for the
	// broker's confirm. Default 5s.
	PublishTimeout time.Duration

	// Prefetch is the QoS prefetch count of each partition consumer (per
	// channel, never global: quorum queues refuse global QoS). Quorum queues
	// cap it at 2000. Default 256.
	Prefetch int

	// ReconnectMin and ReconnectMax bound the backoff between dial attempts:
	// the first redial after a loss waits ReconnectMin, each failure doubles
	// the wait up to ReconnectMax. Defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration

	// Name is the connection_name client property shown by the management
	// UI; the role is appended ("docket-service-publisher",
	// "docket-worker-consumer"). Consumer tags are
	// "<Name>-<instance>-p<i>-<n>", instance being random per Consumer.
	// Default "docket".
	Name string

	// RebalanceInterval is how often a Consumer asks the management API
	// which partitions it is the active consumer of and how many workers
	// consume, and releases partitions beyond its fair share (the partitions
	// over the workers, rounded up) to a waiting worker. Zero turns
	// rebalancing off (WithDefaults leaves it so); the worker's
	// REBALANCE_INTERVAL defaults to 5s.
	RebalanceInterval time.Duration

	// ManagementURL is the broker's HTTP management API, user and password
	// included (http://guest:guest@127.0.0.1:15672); only rebalancing uses
	// it, for the vhost of URL. Default: URL's host and credentials on port
	// 15672 (amqps: https on 15671).
	ManagementURL string
}

const (
	defaultURL             = "amqp://guest:guest@127.0.0.1:5672/"
	defaultPartitions      = 16
	defaultDeliveryLimit   = 10
	defaultPublishChannels = 8
	defaultConfirmWindow   = 256
	defaultPublishTimeout  = 5 * time.Second
	defaultPrefetch        = 256
	defaultReconnectMin    = 100 * time.Millisecond
	defaultReconnectMax    = 5 * time.Second
	defaultName            = "docket"

	// DefaultRebalanceInterval is the worker's default RebalanceInterval.
	DefaultRebalanceInterval = 5 * time.Second

	// maxPrefetch is the prefetch quorum queues honour at most.
	maxPrefetch = 2000
	// maxChannels leaves room below the negotiated channel_max (2047).
	maxChannels = 2000
	// dialTimeout bounds the TCP connect and the AMQP handshake.
	dialTimeout = 10 * time.Second
	// heartbeat detects a dead peer on an otherwise idle connection.
	heartbeat = 10 * time.Second
	// closeTimeout bounds the connection.close handshake on teardown.
	closeTimeout = 2 * time.Second
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.URL == "" {
		c.URL = defaultURL
	}
	if c.Partitions == 0 {
		c.Partitions = defaultPartitions
	}
	if c.DeliveryLimit == 0 {
		c.DeliveryLimit = defaultDeliveryLimit
	}
	if c.PublishChannels == 0 {
		c.PublishChannels = defaultPublishChannels
	}
	if c.ConfirmWindow == 0 {
		c.ConfirmWindow = defaultConfirmWindow
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = defaultPublishTimeout
	}
	if c.Prefetch == 0 {
		c.Prefetch = defaultPrefetch
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = defaultReconnectMin
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = defaultReconnectMax
	}
	if c.Name == "" {
		c.Name = defaultName
	}
	if c.ManagementURL == "" {
		c.ManagementURL = managementURLFor(c.URL)
	}
	return c
}

// Validate reports the first field with a bad value. Call it on the result
// of WithDefaults.
func (c Config) Validate() error {
	if _, err := amqp.ParseURI(c.URL); err != nil {
		return badURL(c.URL)
	}
	switch {
	case c.Partitions < 1 || c.Partitions > maxChannels:
		return fmt.Errorf("rabbitmq: Partitions=%d must be between 1 and %d", c.Partitions, maxChannels)
	case c.DeliveryLimit < 1:
		return fmt.Errorf("rabbitmq: DeliveryLimit=%d must be at least 1", c.DeliveryLimit)
	case c.PublishChannels < 1 || c.PublishChannels > maxChannels:
		return fmt.Errorf("rabbitmq: PublishChannels=%d must be between 1 and %d", c.PublishChannels, maxChannels)
	case c.ConfirmWindow < 1:
		return fmt.Errorf("rabbitmq: ConfirmWindow=%d must be at least 1", c.ConfirmWindow)
	case c.PublishTimeout <= 0:
		return fmt.Errorf("rabbitmq: PublishTimeout=%s must be positive", c.PublishTimeout)
	case c.Prefetch < 1 || c.Prefetch > maxPrefetch:
		return fmt.Errorf("rabbitmq: Prefetch=%d must be between 1 and %d (quorum queues cap it)", c.Prefetch, maxPrefetch)
	case c.ReconnectMin <= 0:
		return fmt.Errorf("rabbitmq: ReconnectMin=%s must be positive", c.ReconnectMin)
	case c.ReconnectMax < c.ReconnectMin:
		return fmt.Errorf("rabbitmq: ReconnectMax=%s must not be below ReconnectMin=%s", c.ReconnectMax, c.ReconnectMin)
	case c.Name == "":
		return fmt.Errorf("rabbitmq: Name must not be empty")
	case c.RebalanceInterval < 0:
		return fmt.Errorf("rabbitmq: RebalanceInterval=%s must be 0 (off) or positive", c.RebalanceInterval)
	}
	if c.RebalanceInterval > 0 {
		if _, err := parseManagementURL(c.ManagementURL); err != nil {
			return err
		}
	}
	return nil
}

// managementURLFor derives the management API's URL from an AMQP URL: the
// same host and credentials, on the management plugin's port. It returns ""
// for a URL that does not parse (Validate reports that one).
func managementURLFor(amqpURL string) string {
	u, err := amqp.ParseURI(amqpURL)
	if err != nil {
		return ""
	}
	m := url.URL{Scheme: "http", Host: net.JoinHostPort(u.Host, "15672"), User: url.UserPassword(u.Username, u.Password)}
	if u.Scheme == "amqps" {
		m.Scheme, m.Host = "https", net.JoinHostPort(u.Host, "15671")
	}
	return m.String()
}

// parseManagementURL checks a management API URL. Like badURL, its errors
// never quote the URL: it may hold a password.
func parseManagementURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("RABBITMQ_MANAGEMENT_URL is not an http(s) URL (http://user:password@host:15672): " +
			"percent-encode any of @ : / ? # in the user or password (the URL is not shown: it may hold a password)")
	}
	return u, nil
}

// badURL says what is wrong with a URL that does not parse without quoting
// it or the parser's error: both would print the password (net/url's errors
// quote the whole URL, and a password with an unescaped '/' or '@' ends up
// in the host or port the error names).
func badURL(raw string) error {
	why := "it does not parse"
	switch {
	case !strings.HasPrefix(raw, "amqp://") && !strings.HasPrefix(raw, "amqps://"):
		why = "the scheme must be amqp:// or amqps://"
	case strings.ContainsAny(raw, " \t\r\n"):
		why = "it holds whitespace"
	}
	return fmt.Errorf("RABBITMQ_URL is not an AMQP URL (amqp://user:password@host:5672/vhost): %s; "+
		"percent-encode any of @ : / ? # in the user or password (the URL is not shown: it may hold a password)", why)
}

// redactURL hides the password of an AMQP URL for logs and errors.
func redactURL(raw string) string {
	u, err := amqp.ParseURI(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.Password = "xxxxx"
	return u.String()
}

// dial opens one connection named "<Name>-<role>". ctx aborts the TCP
// connect; the handshake is bounded by dialTimeout.
func dial(ctx context.Context, cfg Config, role string) (*amqp.Connection, error) {
	conn, err := amqp.DialConfig(cfg.URL, amqp.Config{
		Heartbeat: heartbeat,
		Locale:    "en_US",
		Properties: amqp.Table{
			"connection_name": cfg.Name + "-" + role,
			"product":         "docket",
		},
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Heartbeats start only after the handshake: don't stall on a
			// peer that accepts TCP but never speaks AMQP. The library clears
			// the deadline once the connection is open.
			if err := c.SetDeadline(time.Now().Add(dialTimeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", redactURL(cfg.URL), err)
	}
	return conn, nil
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextBackoff doubles d, capped at max.
func nextBackoff(d, max time.Duration) time.Duration {
	d *= 2
	if d > max {
		return max
	}
	return d
}
