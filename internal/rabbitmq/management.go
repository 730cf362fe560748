package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// managementTimeout bounds one call to the management API.
const managementTimeout = 5 * time.Second

// maxManagementAnswer caps the consumer listing read (a few hundred bytes a
// consumer).
const maxManagementAnswer = 32 << 20

// managementClient reads a vhost's consumers from the broker's HTTP
// management API.
type managementClient struct {
	endpoint   string // …/api/consumers/<vhost>, without credentials
	user, pass string
	http       *http.Client
}

// newManagementClient returns a client for the vhost of cfg.URL at
// cfg.ManagementURL; cfg has passed Validate.
func newManagementClient(cfg Config) (*managementClient, error) {
	u, err := parseManagementURL(cfg.ManagementURL)
	if err != nil {
		return nil, err
	}
	amqpURI, err := amqp.ParseURI(cfg.URL)
	if err != nil {
		return nil, badURL(cfg.URL)
	}
	m := &managementClient{http: &http.Client{Timeout: managementTimeout}}
	if u.User != nil {
		m.user = u.User.Username()
		m.pass, _ = u.User.Password()
	}
	u.User = nil
	// PathEscape keeps the default vhost "/" one path segment, %2F.
	m.endpoint = strings.TrimSuffix(u.String(), "/") + "/api/consumers/" + url.PathEscape(amqpURI.Vhost)
	return m, nil
}

// apiConsumer is one consumer as GET /api/consumers/<vhost> lists it. The
// listing is the management plugin's statistics, refreshed every few
// seconds (collect_statistics_interval, 5s by default): a new consumer, or
// one that became active, shows up late; a cancelled one disappears at once.
type apiConsumer struct {
	Tag string `json:"consumer_tag"`
	// Active is true for the single active consumer of a queue (its
	// activity_status "single_active") and false for the waiting ones.
	Active bool `json:"active"`
	Queue  struct {
		Name string `json:"name"`
	} `json:"queue"`
	Channel channelDetails `json:"channel_details"`
}

// channelDetails is a listed consumer's channel. The broker writes [] for
// a channel it has no statistics of (yet): then Connection is empty.
type channelDetails struct {
	// Connection is the broker's name for the consumer's connection
	// ("<peer> -> <broker>"): one per worker.
	Connection string
}

func (d *channelDetails) UnmarshalJSON(b []byte) error {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
		*d = channelDetails{}
		return nil
	}
	var v struct {
		Connection string `json:"connection_name"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	d.Connection = v.Connection
	return nil
}

// consumers lists the vhost's consumers.
func (m *managementClient) consumers(ctx context.Context) ([]apiConsumer, error) {
	ctx, cancel := context.WithTimeout(ctx, managementTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("management API request %s: %w", m.endpoint, err)
	}
	if m.user != "" {
		req.SetBasicAuth(m.user, m.pass)
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", m.endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET %s: %s", m.endpoint, resp.Status)
	}
	var list []apiConsumer
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManagementAnswer)).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s: decode the consumer listing: %w", m.endpoint, err)
	}
	return list, nil
}
