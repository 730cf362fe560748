package rabbitmq

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Rebalancing. With single active consumer the broker makes the first
// consumer of a partition queue its reader, so without help the first worker
// started reads every partition and the others only wait. Every
// RebalanceInterval each Consumer reads the vhost's consumer listing from the
// management API, counts the workers (connections consuming partition
// queues) and the partitions it is active on, and releases those beyond its
// fair share, ceil(P / workers): its handler ends gracefully, the channel
// closes (the broker hands what is unacked back to the queue and makes the
// next waiting consumer active) and it subscribes again on a fresh channel,
// at the back of the waiting list.
//
// The listing lags by up to the broker's statistics interval (5s), so every
// count errs low: a partition counts as active only for a subscription that
// got a delivery or that the listing shows active under its current tag (an
// active consumer stays active until it is cancelled), and a worker counts
// only once its consumers are listed. A worker therefore never releases
// below its true fair share, and a released partition goes to the next
// waiting worker, which passes it on in turn if that puts it over its own
// share: the surplus moves along the waiting lists until it reaches a worker
// under its share, and no partition is pulled back and forth. Releasing at
// most releasesPerRound a round keeps the handovers few at a time.
const (
	// releasesPerRound caps the partitions a Consumer releases per round.
	// A released partition may pass through a few workers before it finds
	// one under its share, one hop a round, so the cap barely changes how
	// many rounds the spread takes once it is over 4 (16 partitions over 4
	// workers: 8 rounds at 2 a round, 5 at 4, 3 with no cap).
	releasesPerRound = 4
	// handoverWait is how long a released partition's handler may take to
	// finish the requests it is running while this worker stays the
	// partition's active consumer. After it the subscription is cancelled
	// so that the next worker starts on the partition while they finish
	// (their acks still land: the channel stays open until the handler
	// returns); the database's order check keeps the overlap safe.
	handoverWait = time.Second
)

// rebalanceRound is one look at the management API. ok is false when it
// could not be read; then only what the consumer saw itself counts, and
// nothing is released.
type rebalanceRound struct {
	consumers []apiConsumer
	ok        bool
}

// subscription is what the session knows of one partition's subscription.
type subscription struct {
	tag       string
	delivered bool // got a delivery: it is the partition's active consumer
	releasing bool // being released already
}

// rebalancePlan is a round's outcome.
type rebalancePlan struct {
	active  int   // partitions this consumer is known to be active on (releasing ones left out)
	workers int   // consuming workers, this one included; 0 when unknown
	share   int   // ceil(partitions / workers); 0 when unknown
	release []int // partitions to release, highest first
}

// planRebalance decides a round. subs is indexed by partition; ownPrefix
// starts every consumer tag of this consumer (of any session).
func planRebalance(r rebalanceRound, subs []subscription, ownPrefix string, maxRelease int) rebalancePlan {
	partitions := len(subs)
	listedActive := make(map[string]bool)
	others := make(map[string]bool) // connections of other workers
	for _, c := range r.consumers {
		if _, ok := partitionOf(c.Queue.Name, partitions); !ok {
			continue
		}
		if strings.HasPrefix(c.Tag, ownPrefix) {
			if c.Active {
				listedActive[c.Tag] = true
			}
			continue
		}
		if c.Channel.Connection != "" { // unknown: it may be one counted already
			others[c.Channel.Connection] = true
		}
	}
	var p rebalancePlan
	var active []int
	for i, s := range subs {
		if s.tag != "" && !s.releasing && (s.delivered || listedActive[s.tag]) {
			active = append(active, i)
		}
	}
	p.active = len(active)
	if !r.ok {
		return p
	}
	p.workers = 1 + len(others)
	p.share = (partitions + p.workers - 1) / p.workers
	for k := len(active) - 1; k >= 0 && p.active-len(p.release) > p.share && len(p.release) < maxRelease; k-- {
		p.release = append(p.release, active[k])
	}
	return p
}

// partitionOf returns i for queue PartitionQueue(i), i < partitions.
func partitionOf(queue string, partitions int) (int, bool) {
	rest, ok := strings.CutPrefix(queue, RequestsExchange+".")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= partitions || PartitionQueue(i) != queue {
		return 0, false
	}
	return i, true
}

// pollConsumers reads the management API every RebalanceInterval until ctx
// is done and hands each round to the running session (a round nobody
// takes is replaced by the next). An API that cannot be read is warned
// about once, until it answers again: consuming goes on without
// rebalancing.
func (c *Consumer) pollConsumers(ctx context.Context) {
	mgmt, err := newManagementClient(c.cfg)
	if err != nil { // Validate checked the URLs; this is not expected
		c.log.Warn("rabbitmq consumer: no rebalancing", "reason", err)
		return
	}
	t := time.NewTicker(c.cfg.RebalanceInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		list, err := mgmt.consumers(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			failing = true
			c.log.Warn("rabbitmq consumer: management API unreachable; consuming goes on without rebalancing until it answers",
				"url", redactManagementURL(c.cfg.ManagementURL), "err", err)
		case err == nil && failing:
			failing = false
			c.log.Info("rabbitmq consumer: management API answers again; rebalancing", "url", redactManagementURL(c.cfg.ManagementURL))
		}
		r := rebalanceRound{consumers: list, ok: err == nil}
		select { // drop an older round nobody took
		case <-c.rounds:
		default:
		}
		c.rounds <- r // the only sender: there is room now
	}
}

// redactManagementURL hides the password of a management URL for logs.
func redactManagementURL(raw string) string {
	u, err := parseManagementURL(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
