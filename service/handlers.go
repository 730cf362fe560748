package main

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/docket/docket/internal/docket"
	"github.com/docket/docket/internal/postgres"
	"github.com/docket/docket/internal/rabbitmq"
)

func (a *app) healthz(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, []byte(`{"status":"ok"}`))
}

// readyz answers 200 while both the database and the broker are reachable.
func (a *app) readyz(ctx *fasthttp.RequestCtx) {
	if err := a.db.Ping(a.ctx); err != nil {
		a.writeError(ctx, docket.Errorf(docket.CodeUnavailable, "The database is not reachable."))
		return
	}
	if !a.publisher.Ready() {
		a.writeError(ctx, docket.Errorf(docket.CodeUnavailable, "The broker is not reachable."))
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, []byte(`{"status":"ready"}`))
}

func (a *app) metrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	metrics.WritePrometheus(ctx, true)
}

type registered struct {
	ID       uuid.UUID `json:"id"`
	Username string    `json:"username"`
}

func (a *app) register(ctx *fasthttp.RequestCtx) {
	creds, err := docket.ParseCredentials(ctx.PostBody())
	if err == nil {
		err = docket.ValidateUsername(creds.Username)
	}
	if err == nil {
		err = docket.ValidatePassword(creds.Password)
	}
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	hash, err := a.hasher.Hash(a.ctx, creds.Password)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	id := uuid.New()
	if err := a.db.CreateUser(a.ctx, id, creds.Username, hash); err != nil {
		a.writeError(ctx, err)
		return
	}
	a.respond(ctx, fasthttp.StatusCreated, registered{ID: id, Username: creds.Username})
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

var errInvalidCredentials = docket.Errorf(docket.CodeInvalidCreds, "The username or password is wrong.")

// login runs one bcrypt comparison whether or not the user exists, and
// whatever is wrong with the credentials, so that the answer and its
// timing say nothing about which usernames exist.
func (a *app) login(ctx *fasthttp.RequestCtx) {
	creds, err := docket.ParseCredentials(ctx.PostBody())
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	var (
		id    uuid.UUID
		hash  string
		found bool
	)
	if docket.ValidateUsername(creds.Username) == nil && docket.ValidatePassword(creds.Password) == nil {
		if id, hash, found, err = a.db.UserByName(a.ctx, creds.Username); err != nil {
			a.writeError(ctx, err)
			return
		}
	}
	if len(creds.Password) > 72 {
		creds.Password = creds.Password[:72] // compared only for its cost: hash is "" here
	}
	ok, err := a.hasher.Compare(a.ctx, hash, creds.Password)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	if !found || !ok {
		a.writeError(ctx, errInvalidCredentials)
		return
	}
	token, ttl, err := a.tokens.Issue(id)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	a.respond(ctx, fasthttp.StatusOK, tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second)})
}

type acceptedResponse struct {
	ID     uuid.UUID     `json:"id"`
	Seq    int64         `json:"seq"`
	Status docket.Status `json:"status"`
}

// submit takes a request in: durable in the database first, then published
// with a confirm. A failed publish still answers 202, since the row is
// durable; the sweeper publishes it again.
func (a *app) submit(ctx *fasthttp.RequestCtx) {
	user, err := a.tokens.Verify(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	if ok, wait := a.users.allow(user, time.Now()); !ok {
		intakeRejected("user_rate").Inc()
		a.writeError(ctx, errUserRateLimited)
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfter(wait)))
		return
	}
	sub, err := docket.ParseSubmission(ctx.PostBody())
	if err != nil {
		intakeRejected("invalid").Inc()
		a.writeError(ctx, err)
		return
	}
	var key string
	if k := ctx.Request.Header.Peek("Idempotency-Key"); k != nil {
		if err := docket.ValidateIdempotencyKey(k); err != nil {
			intakeRejected("invalid").Inc()
			a.writeError(ctx, err)
			return
		}
		key = string(k)
	}
	if a.backlog.Load() >= int64(a.cfg.BacklogLimit) {
		intakeRejected("backlog").Inc()
		a.writeError(ctx, errBacklogFull)
		return
	}
	start := time.Now()
	acc, err := a.intake.Accept(a.ctx, user, sub, key)
	if err != nil {
		intakeRejected(string(docket.ErrorCode(err))).Inc()
		a.writeError(ctx, err)
		return
	}
	intakeAcceptSeconds.UpdateDuration(start)
	if !acc.Replayed {
		a.backlog.Add(1) // published by the intake writer, before Accept returned
		intakeAccepted.Inc()
	} else {
		intakeReplayed.Inc()
	}
	ctx.Response.Header.Set("Location", "/requests/"+acc.ID.String())
	a.respond(ctx, fasthttp.StatusAccepted, acceptedResponse{ID: acc.ID, Seq: acc.Seq, Status: docket.StatusQueued})
}

// publishAccepted publishes a batch of accepted requests. The intake
// writer calls it after the batch commits and before the callers get their
// 202s.
func (a *app) publishAccepted(ctx context.Context, batch []postgres.Accepted) {
	msgs := make([]docket.Message, len(batch))
	for i, acc := range batch {
		msgs[i] = acc.Message()
	}
	a.publish(ctx, msgs)
}

// publish sends msgs back to back on one channel, each to its user's
// partition, and waits for the broker's confirms. A failure is logged and
// counted, not returned: the rows are durable and the sweeper will publish
// them again.
func (a *app) publish(ctx context.Context, msgs []docket.Message) {
	out := make([]rabbitmq.Outgoing, len(msgs))
	for i, m := range msgs {
		out[i] = rabbitmq.Outgoing{
			RoutingKey: docket.RoutingKey(docket.Partition(m.UserID, a.cfg.RabbitMQ.Partitions)),
			Body:       m.Encode(),
		}
	}
	for i, err := range a.publisher.PublishBatch(ctx, out) {
		if err != nil {
			intakeUnpublished.Inc()
			a.log.Debug("publish failed; the sweeper will publish again", "request", msgs[i].ID, "err", err)
		}
	}
}

func (a *app) get(ctx *fasthttp.RequestCtx) {
	user, err := a.tokens.Verify(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	raw, _ := ctx.UserValue("id").(string)
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		a.writeError(ctx, docket.Errorf(docket.CodeNotFound, "No such request."))
		return
	}
	r, err := a.db.GetRequest(a.ctx, user, id)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	a.respond(ctx, fasthttp.StatusOK, view(r))
}

type listResponse struct {
	Requests     []requestView `json:"requests"`
	NextAfterSeq *int64        `json:"next_after_seq"`
}

func (a *app) list(ctx *fasthttp.RequestCtx) {
	user, err := a.tokens.Verify(ctx.Request.Header.Peek("Authorization"))
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	after, limit, err := listArgs(ctx.QueryArgs())
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	list, more, err := a.db.ListRequests(a.ctx, user, after, limit)
	if err != nil {
		a.writeError(ctx, err)
		return
	}
	resp := listResponse{Requests: make([]requestView, len(list))}
	for i, r := range list {
		resp.Requests[i] = view(r)
	}
	if more {
		next := list[len(list)-1].Seq
		resp.NextAfterSeq = &next
	}
	a.respond(ctx, fasthttp.StatusOK, resp)
}

// listArgs reads GET /requests's query: after_seq (default 0) and limit
// (default 100, at most 1000).
func listArgs(args *fasthttp.Args) (after int64, limit int, err error) {
	if after, err = intArg(args, "after_seq", 0, 0, 1<<62); err != nil {
		return 0, 0, err
	}
	n, err := intArg(args, "limit", 100, 1, 1000)
	return after, int(n), err
}

// intArg parses an optional integer query argument within [lo, hi].
func intArg(args *fasthttp.Args, name string, def, lo, hi int64) (int64, error) {
	if !args.Has(name) {
		return def, nil
	}
	v, err := strconv.ParseInt(string(args.Peek(name)), 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, docket.Errorf(docket.CodeInvalidRequest, "%s must be an integer from %d to %d.", name, lo, hi)
	}
	return v, nil
}

// requestView is a request as API.md shows it.
type requestView struct {
	ID          uuid.UUID       `json:"id"`
	Seq         int64           `json:"seq"`
	Type        docket.Type     `json:"type"`
	Status      docket.Status   `json:"status"`
	Payload     json.RawMessage `json:"payload"`
	Result      json.RawMessage `json:"result"`
	Error       *string         `json:"error"`
	Attempts    int             `json:"attempts"`
	AcceptedAt  string          `json:"accepted_at"`
	ProcessedAt *string         `json:"processed_at"`
}

func view(r docket.Request) requestView {
	v := requestView{
		ID: r.ID, Seq: r.Seq, Type: r.Type, Status: r.Status, Payload: r.Payload, Result: r.Result,
		Attempts: r.Attempts, AcceptedAt: docket.FormatTime(r.AcceptedAt),
	}
	if r.Error != "" {
		v.Error = &r.Error
	}
	if !r.ProcessedAt.IsZero() {
		s := docket.FormatTime(r.ProcessedAt)
		v.ProcessedAt = &s
	}
	return v
}
