package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDatabaseAndVhost(t *testing.T) {
	dbURL := Database(t)
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatalf("connect to %s: %v", dbURL, err)
	}
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
	conn.Close(context.Background())

	amqpURL := Vhost(t)
	c, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatalf("dial %s: %v", amqpURL, err)
	}
	c.Close()
}
