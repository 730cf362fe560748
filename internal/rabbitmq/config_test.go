package rabbitmq

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	want := Config{
		URL:             "amqp://guest:guest@127.0.0.1:5672/",
		Partitions:      16,
		DeliveryLimit:   10,
		PublishChannels: 8,
		ConfirmWindow:   256,
		PublishTimeout:  5 * time.Second,
		Prefetch:        256,
		ReconnectMin:    100 * time.Millisecond,
		ReconnectMax:    5 * time.Second,
		Name:            "docket",
		ManagementURL:   "http://guest:guest@127.0.0.1:15672",
	}
	if c != want {
		t.Fatalf("WithDefaults() = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() on defaults: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error
	}{
		{"bad URL", func(c *Config) { c.URL = "http://guest:secret@x/" }, "RABBITMQ_URL"},
		{"password hidden", func(c *Config) { c.URL = "http://guest:secret@x/" }, "the URL is not shown"},
		{"password with a slash hidden", func(c *Config) { c.URL = "amqp://guest:pa/secret@x:5672/" }, "RABBITMQ_URL is not an AMQP URL"},
		{"negative partitions", func(c *Config) { c.Partitions = -1 }, "Partitions=-1"},
		{"delivery limit", func(c *Config) { c.DeliveryLimit = -3 }, "DeliveryLimit=-3"},
		{"publish channels", func(c *Config) { c.PublishChannels = 5000 }, "PublishChannels=5000"},
		{"confirm window", func(c *Config) { c.ConfirmWindow = -1 }, "ConfirmWindow=-1"},
		{"publish timeout", func(c *Config) { c.PublishTimeout = -time.Second }, "PublishTimeout=-1s"},
		{"prefetch over quorum cap", func(c *Config) { c.Prefetch = 2001 }, "Prefetch=2001"},
		{"reconnect min", func(c *Config) { c.ReconnectMin = -1 }, "ReconnectMin"},
		{"reconnect max below min", func(c *Config) { c.ReconnectMax = time.Millisecond }, "ReconnectMax=1ms"},
		{"negative rebalance interval", func(c *Config) { c.RebalanceInterval = -time.Second }, "RebalanceInterval=-1s"},
		{"management URL not http", func(c *Config) {
			c.RebalanceInterval, c.ManagementURL = time.Second, "amqp://guest:secret@x:15672"
		}, "RABBITMQ_MANAGEMENT_URL is not an http(s) URL"},
		{"management URL without host", func(c *Config) {
			c.RebalanceInterval, c.ManagementURL = time.Second, "http://guest:secret@/"
		}, "the URL is not shown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{}.WithDefaults()
			tt.modify(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("Validate() leaks the password: %v", err)
			}
		})
	}
}

func TestManagementURLDefault(t *testing.T) {
	t.Parallel()
	tests := []struct{ amqp, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "http://guest:guest@127.0.0.1:15672"},
		{"amqp://docket:p%40ss@rabbitmq:5672/prod", "http://docket:p%40ss@rabbitmq:15672"},
		{"amqps://u:p@broker.example:5671/", "https://u:p@broker.example:15671"},
		{"amqp://[::1]:5672/", "http://guest:guest@[::1]:15672"},
	}
	for _, tt := range tests {
		if got := (Config{URL: tt.amqp}).WithDefaults().ManagementURL; got != tt.want {
			t.Errorf("RABBITMQ_URL %s: management URL %s, want %s", tt.amqp, got, tt.want)
		}
	}
	c := Config{URL: "amqp://guest:guest@127.0.0.1:5672/", ManagementURL: "http://admin:x@mgmt:8080/rabbitmq/"}.WithDefaults()
	if c.ManagementURL != "http://admin:x@mgmt:8080/rabbitmq/" {
		t.Errorf("a set ManagementURL became %s", c.ManagementURL)
	}
	if got := redactManagementURL(c.ManagementURL); got != "http://admin:xxxxx@mgmt:8080/rabbitmq/" {
		t.Errorf("redacted %s", got)
	}
}

func TestInvalidConfigFailsAtStart(t *testing.T) {
	t.Parallel()
	bad := Config{Prefetch: 5000}
	if err := NewConsumer(bad, nil).Run(t.Context(), ackAll(nil)); err == nil || !strings.Contains(err.Error(), "Prefetch=5000") {
		t.Errorf("Consumer.Run with Prefetch=5000 = %v, want an error naming it", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "Prefetch=5000") {
			t.Errorf("NewPublisher with Prefetch=5000 panicked with %v, want an error naming it", r)
		}
	}()
	p := NewPublisher(bad, nil)
	_ = p.Close()
}
