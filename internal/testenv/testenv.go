// Package testenv gives tests their own PostgreSQL database and RabbitMQ
// virtual host on the real servers, so that tests never share data and never
// run against mocks. A missing server fails the test; it never skips.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Defaults match the services every development and CI machine runs.
const (
	defaultPostgresURL   = "postgres://postgres@127.0.0.1:5432/postgres"
	defaultRabbitMQURL   = "amqp://guest:guest@127.0.0.1:5672/"
	defaultManagementURL = "http://guest:guest@127.0.0.1:15672"
)

// PostgresAdminURL is the server the test databases are created on
// (TEST_POSTGRES_URL overrides it).
func PostgresAdminURL() string { return env("TEST_POSTGRES_URL", defaultPostgresURL) }

// RabbitMQURL is the broker the test vhosts are created on (TEST_RABBITMQ_URL).
func RabbitMQURL() string { return env("TEST_RABBITMQ_URL", defaultRabbitMQURL) }

// ManagementURL is the broker's management API (TEST_RABBITMQ_MANAGEMENT_URL).
func ManagementURL() string { return env("TEST_RABBITMQ_MANAGEMENT_URL", defaultManagementURL) }

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Name returns a short random name with the given prefix, unique enough for
// databases, vhosts and queues of one test run.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}

// Database creates an empty database for the test and drops it when the test
// ends. It returns the database's URL.
func Database(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, PostgresAdminURL())
	if err != nil {
		t.Fatalf("postgres is not reachable at %s (start it: pg_ctlcluster --skip-systemctl-redirect 15 main start): %v", PostgresAdminURL(), err)
	}
	defer admin.Close(context.Background())
	name := Name("docket_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, PostgresAdminURL())
		if err != nil {
			t.Logf("drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(PostgresAdminURL())
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresAdminURL(), err)
	}
	u.Path = "/" + name
	return u.String()
}

// Vhost creates a RabbitMQ virtual host for the test, grants the default
// user full rights on it, deletes it when the test ends, and returns an AMQP
// URL that points into it.
func Vhost(t testing.TB) string {
	t.Helper()
	name := Name("docket_test")
	if err := manage(http.MethodPut, "/api/vhosts/"+name, ""); err != nil {
		t.Fatalf("rabbitmq management API at %s (enable it: rabbitmq-plugins enable rabbitmq_management): %v", ManagementURL(), err)
	}
	t.Cleanup(func() {
		if err := manage(http.MethodDelete, "/api/vhosts/"+name, ""); err != nil {
			t.Logf("delete vhost %s: %v", name, err)
		}
	})
	u, err := url.Parse(RabbitMQURL())
	if err != nil {
		t.Fatalf("parse %s: %v", RabbitMQURL(), err)
	}
	user := u.User.Username()
	perm := `{"configure":".*","write":".*","read":".*"}`
	if err := manage(http.MethodPut, "/api/permissions/"+name+"/"+url.PathEscape(user), perm); err != nil {
		t.Fatalf("grant %s on vhost %s: %v", user, name, err)
	}
	u.Path = "/" + name
	return u.String()
}

func manage(method, path, body string) error {
	base, err := url.Parse(ManagementURL())
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, strings.TrimSuffix(base.String(), "/")+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	if base.User != nil {
		pw, _ := base.User.Password()
		req.SetBasicAuth(base.User.Username(), pw)
		req.URL.User = nil
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && !(method == http.MethodDelete && resp.StatusCode == http.StatusNotFound) {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

// Eventually polls cond every few milliseconds until it is true or the
// timeout passes, then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
