package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"

	"github.com/docket/docket/internal/docket"
)

// errBacklogFull is the one overload answered with 429: the client sends
// too much, rather than the server being short of CPU (503).
var errBacklogFull = docket.Errorf(docket.CodeOverloaded, "Too many requests are waiting to be processed; retry later.")

// errUserRateLimited is the other 429: this user sends faster than
// USER_RATE_LIMIT.
var errUserRateLimited = docket.Errorf(docket.CodeOverloaded, "You are sending requests faster than the per-user limit; retry later.")

// statusOf maps an error code of API.md to its HTTP status. It is the one
// place that does.
func statusOf(err error) int {
	if errors.Is(err, errBacklogFull) || errors.Is(err, errUserRateLimited) {
		return fasthttp.StatusTooManyRequests
	}
	switch docket.ErrorCode(err) {
	case docket.CodeInvalidRequest:
		return fasthttp.StatusBadRequest
	case docket.CodePayloadTooLarge:
		return fasthttp.StatusRequestEntityTooLarge
	case docket.CodeUsernameTaken:
		return fasthttp.StatusConflict
	case docket.CodeInvalidCreds, docket.CodeUnauthorized:
		return fasthttp.StatusUnauthorized
	case docket.CodeNotFound:
		return fasthttp.StatusNotFound
	case docket.CodeMethodNotAllowed:
		return fasthttp.StatusMethodNotAllowed
	case docket.CodeOverloaded, docket.CodeUnavailable:
		return fasthttp.StatusServiceUnavailable
	default:
		return fasthttp.StatusInternalServerError
	}
}

// writeError answers with API.md's error shape. Internal errors are logged
// with the request id and reach the client only as a generic sentence.
func (a *app) writeError(ctx *fasthttp.RequestCtx, err error) {
	status := statusOf(err)
	code := docket.ErrorCode(err)
	switch code {
	case docket.CodeUnauthorized:
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="docket"`)
	case docket.CodeOverloaded, docket.CodeUnavailable:
		ctx.Response.Header.Set("Retry-After", "1")
	}
	// Internal errors are the server's fault and logged in full; an
	// unavailable database is worth a warning; overload is counted, not
	// logged, since a storm of it would flood the log.
	switch code {
	case docket.CodeInternal:
		a.log.Error("request failed", "request_id", requestID(ctx), "route", routeOf(ctx), "err", err)
	case docket.CodeUnavailable:
		a.log.Warn("request failed", "request_id", requestID(ctx), "route", routeOf(ctx), "err", err)
	}
	metrics.GetOrCreateCounter(`docket_http_errors_total{code="` + string(code) + `"}`).Inc()
	body, _ := json.Marshal(errorBody{Error: errorDetail{Code: code, Message: docket.ErrorMessage(err)}})
	writeJSON(ctx, status, body)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    docket.Code `json:"code"`
	Message string      `json:"message"`
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// respond marshals v as the response body.
func (a *app) respond(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	writeJSON(ctx, status, body)
}

const requestIDKey = "docket.request_id"

// requestID returns the id of the request being served.
func requestID(ctx *fasthttp.RequestCtx) string {
	id, _ := ctx.UserValue(requestIDKey).(string)
	return id
}

// routeOf returns the matched route template, a bounded label value.
func routeOf(ctx *fasthttp.RequestCtx) string {
	if r, ok := ctx.UserValue(router.MatchedRoutePathParam).(string); ok {
		return r
	}
	return "unmatched"
}

// validRequestID accepts a client's X-Request-Id of up to 128 printable
// ASCII characters; anything else is replaced by a new id.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var httpBuckets = []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10}

// instrument wraps every handler: request id, latency and count by route
// and status, and a panic turned into a 500 without a stack trace on the
// wire.
func (a *app) instrument(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		id := ctx.Request.Header.Peek("X-Request-Id")
		rid := newRequestIDOr(id)
		ctx.SetUserValue(requestIDKey, rid)
		ctx.Response.Header.Set("X-Request-Id", rid)
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("panic serving request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
				ctx.Response.Reset()
				ctx.Response.Header.Set("X-Request-Id", rid)
				a.writeError(ctx, errors.New("panic"))
			}
			route := routeOf(ctx)
			code := strconv.Itoa(ctx.Response.StatusCode())
			metrics.GetOrCreateCounter(`docket_http_requests_total{route="` + route + `",code="` + code + `"}`).Inc()
			metrics.GetOrCreatePrometheusHistogramExt(`docket_http_request_duration_seconds{route="`+route+`"}`, httpBuckets).UpdateDuration(start)
		}()
		next(ctx)
	}
}

func newRequestIDOr(id []byte) string {
	if validRequestID(id) {
		return string(id)
	}
	return newRequestID()
}

// routes builds the router of API.md.
func (a *app) routes() fasthttp.RequestHandler {
	r := router.New()
	r.SaveMatchedRoutePath = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = true // OPTIONS answers 200 with Allow; other wrong methods get 405
	r.HandleMethodNotAllowed = true
	r.GET("/healthz", a.healthz)
	r.GET("/readyz", a.readyz)
	r.GET("/metrics", a.metrics)
	r.POST("/auth/register", a.register)
	r.POST("/auth/login", a.login)
	r.POST("/requests", a.submit)
	r.GET("/requests", a.list)
	r.GET("/requests/{id}", a.get)
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		a.writeError(ctx, docket.Errorf(docket.CodeNotFound, "No such path."))
	}
	r.MethodNotAllowed = func(ctx *fasthttp.RequestCtx) {
		a.writeError(ctx, docket.Errorf(docket.CodeMethodNotAllowed, "Method %s is not allowed here; see the Allow header.", sanitizeMethod(ctx.Method())))
	}
	return a.instrument(r.Handler)
}

// sanitizeMethod keeps a method name fit to echo in a message.
func sanitizeMethod(m []byte) string {
	if len(m) > 16 || bytes.ContainsFunc(m, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return "this"
	}
	return string(m)
}

// serverError answers errors fasthttp meets before a handler runs: a body
// over the limit gets 413 (fasthttp's default would be 400) and a lingering
// close, anything else unreadable gets 400, both in API.md's shape and with
// the client's X-Request-Id when its headers were read.
func (a *app) serverError(ctx *fasthttp.RequestCtx, err error) {
	// A read that timed out with no request to answer (a connection that
	// sent nothing, or stalled in its body, until READ_TIMEOUT) is closed
	// without an answer: HTTP clients keep spare connections in their
	// pools, and a 400 written on one reaches the client later as an
	// unsolicited response on an idle connection.
	var idle *net.OpError
	if errors.As(err, &idle) && error(idle) == err && idle.Timeout() {
		_ = ctx.Conn().Close()
		return
	}
	rid := newRequestIDOr(ctx.Request.Header.Peek("X-Request-Id")) // the headers are read when the body is too large
	ctx.SetUserValue(requestIDKey, rid)
	ctx.Response.Header.Set("X-Request-Id", rid)
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		lingerOnClose(ctx) // the client may still be sending the body
		a.writeError(ctx, docket.Errorf(docket.CodePayloadTooLarge, "The body is larger than %d bytes.", a.cfg.MaxBodyBytes))
		return
	}
	if _, ok := errors.AsType[*fasthttp.ErrSmallBuffer](err); ok {
		a.writeError(ctx, docket.Errorf(docket.CodeInvalidRequest, "The request headers are too large."))
		return
	}
	a.writeError(ctx, docket.Errorf(docket.CodeInvalidRequest, "The request could not be read as HTTP."))
}
