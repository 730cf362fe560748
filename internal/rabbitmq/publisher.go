package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrNotConnected is returned by Publish at once when the publisher has no
// live connection (broker down, not dialled yet) or the broker has blocked
// it (memory or disk alarm), and after Close.
var ErrNotConnected = errors.New("rabbitmq: publisher not connected")

// Publish failures after the message may have reached the broker. For the
// caller all mean "not known to be stored": leave the row for the sweeper.
var (
	errReturned       = errors.New("returned by the broker as unroutable")
	errNacked         = errors.New("nacked by the broker")
	errChannelClosed  = errors.New("channel closed before the confirm, outcome unknown")
	errConnectionLost = errors.New("connection lost")
	errConfirmTimeout = errors.New("no confirm in time, outcome unknown")
)

const (
	rolePublisher = "publisher"
	roleConsumer  = "consumer"
)

// Publisher publishes to the requests exchange with confirms over one
// dedicated connection and a fixed pool of confirm-mode channels, shared by
// all callers. It dials in the background and redials with backoff for as
// long as it lives; Publish never waits for a connection.
type Publisher struct {
	cfg Config
	log *slog.Logger

	ctx      context.Context // cancelled by Close: stop redialing
	cancel   context.CancelFunc
	loopDone chan struct{}

	live atomic.Pointer[liveConn] // nil while disconnected

	mu       sync.RWMutex // orders closing against inflight.Add
	closing  atomic.Bool
	inflight sync.WaitGroup
	closed   sync.Once

	nextID       atomic.Uint64
	inFlight     atomic.Int64 // confirms awaited now
	peakInFlight atomic.Int64 // high-water mark of inFlight
}

// liveConn is one established publishing connection and its channel pool.
type liveConn struct {
	conn    *amqp.Connection
	pool    chan *confirmChannel
	done    chan struct{} // closed when the connection is given up
	lost    chan error    // the first connection or channel failure
	blocks  chan amqp.Blocking
	blocked atomic.Bool
}

// NewPublisher returns at once and connects in the background. cfg gets
// WithDefaults; an invalid cfg panics (validate it at start, where the
// message can tell the operator what to fix). A nil log uses slog.Default.
func NewPublisher(cfg Config, log *slog.Logger) *Publisher {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		cfg:      cfg,
		log:      log.With("component", "rabbitmq", "role", rolePublisher),
		ctx:      ctx,
		cancel:   cancel,
		loopDone: make(chan struct{}),
	}
	go p.run()
	return p
}

// Ready reports whether the publisher is connected with its channels open
// and not blocked by the broker.
func (p *Publisher) Ready() bool {
	return p.live.Load().usable() && !p.closing.Load()
}

// usable reports whether lc is open and not blocked. It reads the
// connection's closed flag too, so that the moment between the connection
// dying and run noticing reads as not connected.
func (lc *liveConn) usable() bool {
	return lc != nil && !lc.blocked.Load() && !lc.conn.IsClosed()
}

// Outgoing is one message of a batch: its routing key and JSON body.
type Outgoing struct {
	RoutingKey string
	Body       []byte
}

// Publish sends body as a persistent JSON message to the requests exchange
// with routingKey (mandatory) and waits for the broker's confirm, at most
// PublishTimeout or until ctx is done. It returns nil only on a positive
// confirm. It returns ErrNotConnected at once while disconnected or blocked;
// otherwise an error wrapping the cause: nack, return (unroutable), channel
// or connection closed (outcome unknown), or timeout (outcome unknown).
func (p *Publisher) Publish(ctx context.Context, routingKey string, body []byte) error {
	return p.PublishBatch(ctx, []Outgoing{{RoutingKey: routingKey, Body: body}})[0]
}

// PublishBatch publishes msgs in order, back to back on one channel, then
// waits for all their confirms (at most PublishTimeout or until ctx is
// done). errs[i] is what Publish would return for msgs[i]. One batch costs
// the broker about what one message does: it reads the publishes in one
// go, writes them to its log together and confirms them with one
// multiple ack.
func (p *Publisher) PublishBatch(ctx context.Context, msgs []Outgoing) (errs []error) {
	errs = make([]error, len(msgs))
	fail := func(from int, outcome string, err error) {
		for i := from; i < len(msgs); i++ {
			errs[i] = err
			publishesTotal[outcome].Inc()
		}
	}
	if !p.enter() {
		fail(0, outcomeNotConnected, ErrNotConnected)
		return errs
	}
	defer p.inflight.Done()
	lc := p.live.Load()
	if !lc.usable() {
		fail(0, outcomeNotConnected, ErrNotConnected)
		return errs
	}
	if err := ctx.Err(); err != nil {
		fail(0, outcomeTimeout, fmt.Errorf("publish: %w", context.Cause(ctx)))
		return errs
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()

	// Take a channel exclusively, only for the basic.publishes themselves.
	var c *confirmChannel
	select {
	case c = <-lc.pool:
	case <-lc.done:
		fail(0, outcomeClosed, fmt.Errorf("publish: %w", errConnectionLost))
		return errs
	case <-ctx.Done():
		fail(0, outcomeTimeout, fmt.Errorf("publish: wait for a channel: %w", context.Cause(ctx)))
		return errs
	}
	pending := make([]pendingConfirm, 0, len(msgs))
	for i, m := range msgs {
		pc, outcome, err := p.send(ctx, lc, c, m)
		if err != nil {
			fail(i, outcome, err)
			break
		}
		pc.i = i
		pending = append(pending, pc)
	}
	lc.pool <- c

	// Wait for the confirms outside any lock: every other caller can
	// publish on this channel meanwhile.
	for n, pc := range pending {
		select {
		case <-pc.dc.Done():
		case <-ctx.Done():
			// Keep the window tokens until the confirms resolve (a dying
			// channel resolves them too), and drain their returns, if any.
			rest := pending[n:]
			go func() {
				for _, pc := range rest {
					<-pc.dc.Done()
					c.takeReturn(pc.id)
					p.confirmEnded(c)
				}
			}()
			for _, pc := range rest {
				errs[pc.i] = fmt.Errorf("publish to %q: %w: %w", msgs[pc.i].RoutingKey, errConfirmTimeout, context.Cause(ctx))
				publishesTotal[outcomeTimeout].Inc()
			}
			return errs
		}
		outcome, err := p.resolve(c, pc, msgs[pc.i].RoutingKey)
		errs[pc.i] = err
		publishesTotal[outcome].Inc()
		publishSeconds.UpdateDuration(start)
	}
	return errs
}

// enter registers an in-flight Publish unless Close has begun.
func (p *Publisher) enter() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closing.Load() {
		return false
	}
	p.inflight.Add(1)
	return true
}

// pendingConfirm is a publish of a batch waiting for its confirm.
type pendingConfirm struct {
	i  int // index in the batch
	id string
	dc *amqp.DeferredConfirmation
}

// send takes a window token on c and publishes m.
func (p *Publisher) send(ctx context.Context, lc *liveConn, c *confirmChannel, m Outgoing) (pendingConfirm, string, error) {
	select {
	case c.window <- struct{}{}:
	case <-lc.done:
		return pendingConfirm{}, outcomeClosed, fmt.Errorf("publish to %q: %w", m.RoutingKey, errConnectionLost)
	case <-ctx.Done():
		return pendingConfirm{}, outcomeTimeout, fmt.Errorf("publish to %q: wait for the confirm window: %w", m.RoutingKey, context.Cause(ctx))
	}
	id := strconv.FormatUint(p.nextID.Add(1), 36)
	dc, err := c.ch.PublishWithDeferredConfirmWithContext(ctx, RequestsExchange, m.RoutingKey,
		true,  // mandatory: an unroutable message comes back as basic.return
		false, // immediate: not supported by RabbitMQ
		amqp.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp.Persistent,
			MessageId:    id,
			Body:         m.Body,
		})
	if err != nil {
		<-c.window
		if ctx.Err() != nil {
			return pendingConfirm{}, outcomeTimeout, fmt.Errorf("publish to %q: %w", m.RoutingKey, context.Cause(ctx))
		}
		return pendingConfirm{}, outcomeClosed, fmt.Errorf("publish to %q: %w", m.RoutingKey, err)
	}
	p.confirmStarted()
	return pendingConfirm{id: id, dc: dc}, "", nil
}

// resolve reads the outcome of a publish whose confirm has arrived.
func (p *Publisher) resolve(c *confirmChannel, pc pendingConfirm, key string) (outcome string, err error) {
	ret, returned := c.takeReturn(pc.id)
	acked := pc.dc.Acked()
	p.confirmEnded(c)
	switch {
	case returned: // the broker acks a returned message too; return comes first
		return outcomeReturned, fmt.Errorf("publish to %q: %w: %d %s", key, errReturned, ret.ReplyCode, ret.ReplyText)
	case acked:
		return outcomeAck, nil
	case c.ch.IsClosed():
		return outcomeClosed, fmt.Errorf("publish to %q: %w", key, errChannelClosed)
	default:
		return outcomeNack, fmt.Errorf("publish to %q: %w", key, errNacked)
	}
}

func (p *Publisher) confirmStarted() {
	confirmsInFlight.Inc()
	n := p.inFlight.Add(1)
	for {
		peak := p.peakInFlight.Load()
		if n <= peak || p.peakInFlight.CompareAndSwap(peak, n) {
			return
		}
	}
}

func (p *Publisher) confirmEnded(c *confirmChannel) {
	<-c.window
	p.inFlight.Add(-1)
	confirmsInFlight.Dec()
}

// Close stops redialing, waits for in-flight publishes (at most
// PublishTimeout and a second), then closes the connection. Publish returns
// ErrNotConnected from then on. It is safe to call more than once.
func (p *Publisher) Close() error {
	p.closed.Do(func() {
		p.mu.Lock()
		p.closing.Store(true)
		p.mu.Unlock()

		drained := make(chan struct{})
		go func() {
			p.inflight.Wait()
			close(drained)
		}()
		t := time.NewTimer(p.cfg.PublishTimeout + time.Second)
		select {
		case <-drained:
		case <-t.C:
			p.log.Warn("rabbitmq publisher: closing with publishes still in flight",
				"in_flight", p.inFlight.Load())
		}
		t.Stop()
		p.cancel()
		<-p.loopDone
	})
	return nil
}

// run dials, serves one connection until it fails, and redials with
// backoff, until Close.
func (p *Publisher) run() {
	defer close(p.loopDone)
	connected := connectedGauge[rolePublisher]
	url := redactURL(p.cfg.URL)
	delay := p.cfg.ReconnectMin
	everConnected := false
	for {
		start := time.Now()
		lc, err := p.connect()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.log.Warn("rabbitmq publisher: connect failed", "url", url, "retry_in", delay, "err", err)
			if !sleepCtx(p.ctx, delay) {
				return
			}
			delay = nextBackoff(delay, p.cfg.ReconnectMax)
			continue
		}
		if everConnected {
			reconnectsTotal[rolePublisher].Inc()
		}
		everConnected = true
		delay = p.cfg.ReconnectMin
		p.live.Store(lc)
		connected.Inc()
		p.log.Info("rabbitmq publisher: connected", "url", url,
			"channels", p.cfg.PublishChannels, "took", time.Since(start))

		reason := lc.serve(p.ctx, p.log)

		p.live.Store(nil)
		connected.Dec()
		lc.teardown()
		if p.ctx.Err() != nil {
			p.log.Info("rabbitmq publisher: closed")
			return
		}
		p.log.Warn("rabbitmq publisher: disconnected", "reason", reason, "redial_in", delay)
		if !sleepCtx(p.ctx, delay) {
			return
		}
	}
}

// connect dials, declares the topology and opens the channel pool.
func (p *Publisher) connect() (*liveConn, error) {
	conn, err := dial(p.ctx, p.cfg, rolePublisher)
	if err != nil {
		return nil, err
	}
	lc := &liveConn{
		conn: conn,
		pool: make(chan *confirmChannel, p.cfg.PublishChannels),
		done: make(chan struct{}),
		lost: make(chan error, 1),
	}
	watchClose(conn.NotifyClose(make(chan *amqp.Error, 1)), lc.lost, "connection")
	lc.blocks = conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	if err := declareOn(conn, p.cfg); err != nil {
		closeConn(conn)
		return nil, err
	}
	for i := range p.cfg.PublishChannels {
		c, err := openConfirmChannel(conn, p.cfg.ConfirmWindow, lc.lost)
		if err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("publishing channel %d: %w", i, err)
		}
		lc.pool <- c
	}
	return lc, nil
}

// serve follows the connection's blocked state until the connection or a
// channel fails (the reason is returned) or ctx is done.
func (lc *liveConn) serve(ctx context.Context, log *slog.Logger) error {
	blocks := lc.blocks
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lc.lost:
			return err
		case b, ok := <-blocks:
			if !ok { // closed with the connection; lost reports why
				blocks = nil
				continue
			}
			if b.Active && lc.blocked.CompareAndSwap(false, true) {
				blockedGauge.Inc()
				log.Warn("rabbitmq publisher: blocked by the broker", "reason", b.Reason)
			}
			if !b.Active && lc.blocked.CompareAndSwap(true, false) {
				blockedGauge.Dec()
				log.Info("rabbitmq publisher: unblocked")
			}
		}
	}
}

// teardown wakes the callers waiting for a channel of this connection and
// closes it, which resolves every pending confirm as false at once.
func (lc *liveConn) teardown() {
	close(lc.done)
	if lc.blocked.CompareAndSwap(true, false) {
		blockedGauge.Dec()
	}
	closeConn(lc.conn)
}

// declareOn declares the topology on a short-lived channel: a failed
// declaration closes the channel it ran on.
func declareOn(conn *amqp.Connection, cfg Config) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	if err := DeclareTopology(ch, cfg.Partitions, cfg.DeliveryLimit); err != nil {
		return err
	}
	return ch.Close()
}

// closeConn closes conn with a bounded handshake; a connection that is
// already gone is fine.
func closeConn(conn *amqp.Connection) {
	_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
}
