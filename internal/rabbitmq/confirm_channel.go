package rabbitmq

import (
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// confirmChannel is one confirm-mode channel of the publisher's pool. A
// caller holds it exclusively only while it sends one basic.publish; many
// confirms are awaited on it at once, up to the window.
type confirmChannel struct {
	ch *amqp.Channel

	// window holds one token per publish whose confirm has not arrived yet.
	// A token is released only when the confirm resolves (even when its
	// caller gave up waiting), so the window bounds what the broker holds
	// unconfirmed on this channel, and with it the returns pending below.
	window chan struct{}

	// returns is NotifyReturn's buffer. The broker sends basic.return before
	// the basic.ack of the same publish, and the library hands both over on
	// its one reader goroutine, so by the time a publish's confirm resolves
	// its return (if any) sits in this buffer or in returned. Whoever sees a
	// confirm drains the buffer under mu before looking; that is why there is
	// no separate drainer goroutine (it would hold a return in hand, unseen,
	// while the confirm's waiter looks). Its capacity exceeds the window, so
	// the reader goroutine never waits on it.
	returns chan amqp.Return

	mu            sync.Mutex
	returned      map[string]amqp.Return // by MessageId, until its publisher looks
	returnsClosed bool
}

// openConfirmChannel opens a channel in confirm mode on conn. The first
// abnormal close of the channel is sent to lost (without blocking).
func openConfirmChannel(conn *amqp.Connection, window int, lost chan<- error) (*confirmChannel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false /* noWait */); err != nil {
		return nil, fmt.Errorf("put channel in confirm mode: %w", err)
	}
	c := &confirmChannel{
		ch:       ch,
		window:   make(chan struct{}, window),
		returns:  ch.NotifyReturn(make(chan amqp.Return, window+1)),
		returned: make(map[string]amqp.Return),
	}
	watchClose(ch.NotifyClose(make(chan *amqp.Error, 1)), lost, "publishing channel")
	return c, nil
}

// takeReturn reports whether the publish with MessageId id was returned,
// and forgets it. Call it after the publish's confirm resolved.
func (c *confirmChannel) takeReturn(id string) (amqp.Return, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
drain:
	for !c.returnsClosed {
		select {
		case r, ok := <-c.returns:
			if !ok {
				c.returnsClosed = true // the channel closed: nothing more comes
				break drain
			}
			c.returned[r.MessageId] = r
		default:
			break drain
		}
	}
	r, ok := c.returned[id]
	if ok {
		delete(c.returned, id)
	}
	return r, ok
}

// watchClose forwards the first error on closes (a NotifyClose channel,
// buffered) to lost without blocking, and returns when closes is closed or
// has delivered. A graceful close delivers no error and forwards nothing.
func watchClose(closes <-chan *amqp.Error, lost chan<- error, what string) {
	go func() {
		e, ok := <-closes
		if !ok {
			return
		}
		select {
		case lost <- fmt.Errorf("%s closed: %w", what, e):
		default: // another failure is already reported
		}
	}()
}
