package main

import (
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Bounds of a lingering close: long enough for a client on any network to
// read the answer, short enough that a client that keeps sending cannot
// hold a server goroutine.
const (
	lingerTimeout  = 2 * time.Second
	lingerMaxBytes = 64 << 20
)

// lingerListener hands out connections that can close gracefully (see
// lingerConn).
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

// lingerConn closes, once asked to linger, the way a server must after
// answering a request whose body it did not read (RFC 9112 section 9.6):
// it sends FIN after the answer and reads and discards what the client is
// still sending until the client closes or a bound passes. fasthttp closes
// at once after a 413; the unread body then makes the kernel answer with a
// reset, and a client still writing its body sees "connection reset by
// peer" instead of the 413 (Go's net/http client does).
type lingerConn struct {
	net.Conn
	linger atomic.Bool
}

func (c *lingerConn) Close() error {
	if c.linger.Swap(false) {
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.Copy(io.Discard, io.LimitReader(c.Conn, lingerMaxBytes))
		}
	}
	return c.Conn.Close()
}

// lingerOnClose asks for a lingering close of ctx's connection.
func lingerOnClose(ctx *fasthttp.RequestCtx) {
	if c, ok := ctx.Conn().(*lingerConn); ok {
		c.linger.Store(true)
	}
}
