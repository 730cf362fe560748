// Package progress prints a live status line during the bench's long
// phases: redrawn in place every second on a terminal, or a plain line
// every few seconds when the output is a log (CI), so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Line redraws one status line until Stop.
type Line struct {
	w        io.Writer
	tty      bool
	interval time.Duration
	status   func() string
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	width    int
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start begins printing status() to w: every second in place when tty, else
// a line every interval. A nil w prints nothing.
func Start(w io.Writer, tty bool, interval time.Duration, status func() string) *Line {
	l := &Line{w: w, tty: tty, interval: interval, status: status, stop: make(chan struct{}), done: make(chan struct{})}
	if tty {
		l.interval = time.Second
	}
	go l.loop()
	return l
}

func (l *Line) loop() {
	defer close(l.done)
	if l.w == nil {
		<-l.stop
		return
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			l.print(true)
			return
		case <-t.C:
			l.print(false)
		}
	}
}

func (l *Line) print(final bool) {
	s := l.status()
	if !l.tty {
		fmt.Fprintln(l.w, s)
		return
	}
	pad := max(l.width-len(s), 0)
	l.width = len(s)
	fmt.Fprintf(l.w, "\r%s%*s", s, pad, "")
	if final {
		fmt.Fprintln(l.w)
	}
}

// Stop prints the final status and ends the line.
func (l *Line) Stop() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}
