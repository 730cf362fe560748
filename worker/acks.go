package main

import (
	"slices"
	"sync"
)

// acker settles one channel's deliveries in as few acks as it can. Lanes
// finish deliveries out of order, but mostly close to it: whenever the
// deliveries from the oldest unsettled one on are done, one ack with
// multiple=true settles all of them, where the broker would otherwise take
// one ack (one log entry of the quorum queue) each. A done delivery behind
// one still running (a slow request) is acked on its own at once, so a slow
// request never holds the others' acks back and the prefetch window never
// fills with finished work.
//
// A delivery that must not be acked (rejected, or abandoned at a shutdown)
// is never marked done: a multiple ack never reaches past it. Reject it
// before calling settled, so that the reject goes out first.
type acker struct {
	ack func(tag uint64, multiple bool) error

	mu      sync.Mutex
	pending []pendingTag // unacked deliveries in tag (arrival) order
	kick    chan struct{}
	done    chan struct{}
}

type pendingTag struct {
	tag     uint64
	settled bool // acked by us soon, or rejected already
	ackIt   bool
}

// newAcker starts an acker that acks through ack (the channel's
// Acknowledger); stop ends it.
func newAcker(ack func(tag uint64, multiple bool) error) *acker {
	a := &acker{ack: ack, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go a.run()
	return a
}

// delivered registers a delivery, in the order the channel delivered them.
func (a *acker) delivered(tag uint64) {
	a.mu.Lock()
	a.pending = append(a.pending, pendingTag{tag: tag})
	a.mu.Unlock()
}

// acked marks a delivery done: it will be acked shortly.
func (a *acker) acked(tag uint64) { a.settle(tag, true) }

// rejected marks a delivery that was rejected (or nacked) already.
func (a *acker) rejected(tag uint64) { a.settle(tag, false) }

func (a *acker) settle(tag uint64, ackIt bool) {
	a.mu.Lock()
	i, found := slices.BinarySearchFunc(a.pending, tag, func(p pendingTag, t uint64) int {
		switch {
		case p.tag < t:
			return -1
		case p.tag > t:
			return 1
		}
		return 0
	})
	if found {
		a.pending[i].settled, a.pending[i].ackIt = true, ackIt
	}
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *acker) run() {
	defer close(a.done)
	for range a.kick {
		a.flush()
	}
}

// flush acks what is settled: the settled run from the oldest pending
// delivery with one multiple ack (when it ends in an ack; a rejected
// delivery is settled already), every other acked one on its own.
func (a *acker) flush() {
	a.mu.Lock()
	n := 0
	for n < len(a.pending) && a.pending[n].settled {
		n++
	}
	var multiple uint64
	if n > 0 {
		for i := n - 1; i >= 0; i-- {
			if a.pending[i].ackIt {
				multiple = a.pending[i].tag
				break
			}
		}
	}
	// A reject after the last ack of the run is covered by no ack; one
	// before it was sent before its settle, so the multiple ack skips it.
	var singles []uint64
	kept := a.pending[:0]
	for _, p := range a.pending[n:] {
		switch {
		case !p.settled:
			kept = append(kept, p)
		case p.ackIt:
			singles = append(singles, p.tag)
		}
	}
	clear(a.pending[len(kept):])
	a.pending = kept
	a.mu.Unlock()

	if multiple > 0 {
		acksSent.Inc()
		if err := a.ack(multiple, true); err != nil {
			return // the channel is gone: the broker redelivers what is unacked
		}
	}
	for _, tag := range singles {
		acksSent.Inc()
		if err := a.ack(tag, false); err != nil {
			return
		}
	}
}

// stop acks what is settled and ends the acker. Call it after the last
// settle.
func (a *acker) stop() {
	close(a.kick)
	<-a.done
	a.flush()
}
