// Package notify is the handler of the notify function, the public front door
// for everything WeChat Pay pushes: POST /notify/{channel}, channel one of
// payments, refunds, payscore, coupons.
//
// Each delivery is verified over the exact received bytes (key by
// Wechatpay-Serial, ±5 minutes, SIGNTEST probes rejected), decrypted, checked
// against its channel, and applied exactly once: one DynamoDB transaction
// writes the notification record (by id), the business-event record
// (business key + event type), the domain state change guarded by the
// expected prior state, and the domain event into the outbox. 2xx is answered
// only after that commit; duplicates get 2xx with no second effect; failures
// of verification get 401 and touch nothing; store failures get 5xx so
// WeChat Pay retries.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxnotify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// Outcomes, one per log line and EMF metric.
const (
	OutcomeAccepted     = "accepted"
	OutcomeDuplicate    = "duplicate"
	OutcomeSuperseded   = "superseded" // state already moved past this event
	OutcomeAnomaly      = "anomaly"    // stored for reconciliation, state untouched
	OutcomeIgnored      = "ignored"    // verified event type without a domain effect
	OutcomeBadSignature = "bad_signature"
	OutcomeStale        = "stale"
	OutcomeDecryptError = "decrypt_error"
	OutcomeInvalid      = "invalid"
	OutcomeStoreError   = "store_error"
)

// Handler answers notification deliveries.
type Handler struct {
	router   *apigw.Router
	deps     app.Deps
	verifier *wxnotify.Verifier
	now      func() time.Time
}

// New builds the handler.
func New(deps app.Deps) *Handler {
	h := &Handler{deps: deps, now: deps.Clock()}
	if deps.Secrets != nil {
		h.verifier = &wxnotify.Verifier{Keys: wxpay.KeyLookup(deps.Secrets), Now: h.now,
			APIv3Key: func(ctx context.Context) ([]byte, error) {
				c, err := deps.Secrets.Get(ctx)
				if err != nil {
					return nil, err
				}
				return c.APIv3Key, nil
			}}
	}
	h.router = deps.NewRouter([]apigw.Route{
		{Method: http.MethodPost, Path: "/notify/{channel}", Scope: apigw.ScopeNone, Handle: h.receive},
	})
	return h
}

// Routes lists the function's HTTP routes (template.yaml declares the same).
func (h *Handler) Routes() []apigw.Route { return h.router.Routes() }

// Handle is the Lambda entry point.
func (h *Handler) Handle(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return h.router.Handle(ctx, e)
}

// KnownChannel reports whether ch is one of the notification channels.
func KnownChannel(ch string) bool {
	switch ch {
	case "payments", "refunds", "payscore", "coupons":
		return true
	}
	return false
}

type result struct {
	status    int
	code      string
	message   string
	outcome   string
	id        string
	eventType string
	serial    string
}

func (h *Handler) receive(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	start := time.Now()
	ch := req.PathParams["channel"]
	if !KnownChannel(ch) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "unknown notification channel %q", ch)
	}
	r := h.process(ctx, ch, req)
	log := h.deps.Logger()
	log.InfoContext(ctx, "notification", "id", r.id, "event_type", r.eventType, "channel", ch, "outcome", r.outcome,
		"status", r.status, "serial", r.serial, "latency_ms", float64(time.Since(start).Microseconds())/1000,
		"request_id", req.Event.RequestContext.RequestID)
	h.deps.Metrics.Count("Notifications", 1, map[string]string{"Function": "notify", "Outcome": r.outcome})
	if r.status >= 200 && r.status < 300 {
		return &apigw.Response{Status: r.status}, nil
	}
	return apigw.JSON(r.status, apigw.ErrorBody{Code: r.code, Message: r.message}), nil
}

func (h *Handler) process(ctx context.Context, ch string, req *apigw.Request) result {
	if h.verifier == nil {
		return result{status: http.StatusInternalServerError, code: apigw.CodeInternal, message: "credentials not configured", outcome: OutcomeStoreError}
	}
	n, err := h.verifier.Parse(ctx, req.Header, req.Body)
	if err != nil {
		r := classifyParse(err)
		if r.status >= 500 {
			h.deps.Logger().ErrorContext(ctx, "notification verification could not run", "error", err)
		}
		return r
	}
	r := result{id: n.ID, eventType: n.EventType, serial: n.Serial}
	owner := ChannelOf(n.EventType)
	if owner != "" && owner != ch {
		r.status, r.code, r.outcome = http.StatusBadRequest, "WRONG_CHANNEL", OutcomeInvalid
		r.message = "event type " + n.EventType + " is not delivered to the " + ch + " channel"
		return r
	}
	now := h.now()
	var eff *effect
	if owner != "" {
		if eff, err = decide(n.EventType, n.Plaintext, now); err != nil {
			r.status, r.code, r.outcome, r.message = http.StatusBadRequest, "INVALID_RESOURCE", OutcomeInvalid, err.Error()
			return r
		}
	}
	outcome, err := h.apply(ctx, ch, n, eff, now)
	if err != nil {
		r.outcome = OutcomeStoreError
		if errors.Is(err, store.ErrContention) {
			r.status, r.code, r.message = http.StatusServiceUnavailable, "TRY_AGAIN", "busy, deliver again"
		} else {
			h.deps.Logger().ErrorContext(ctx, "notification store failed", "id", n.ID, "error", err)
			r.status, r.code, r.message = http.StatusInternalServerError, apigw.CodeInternal, "could not store the notification"
		}
		return r
	}
	r.status, r.outcome = http.StatusNoContent, outcome
	return r
}

func classifyParse(err error) result {
	switch {
	case errors.Is(err, wxsign.ErrSignTest):
		return result{status: http.StatusUnauthorized, code: "SIGNTEST_PROBE", message: "signature probe rejected", outcome: OutcomeBadSignature}
	case errors.Is(err, wxsign.ErrStale):
		return result{status: http.StatusUnauthorized, code: "STALE_TIMESTAMP", message: "timestamp outside the 5-minute window", outcome: OutcomeStale}
	case errors.Is(err, wxsign.ErrUnknownSerial):
		return result{status: http.StatusUnauthorized, code: "UNKNOWN_SERIAL", message: "no verification key for Wechatpay-Serial", outcome: OutcomeBadSignature}
	case errors.Is(err, wxsign.ErrBadSignature):
		return result{status: http.StatusUnauthorized, code: "BAD_SIGNATURE", message: "signature does not verify", outcome: OutcomeBadSignature}
	case errors.Is(err, wxsign.ErrMalformed):
		return result{status: http.StatusUnauthorized, code: "MALFORMED_SIGNATURE", message: "missing or malformed signature headers", outcome: OutcomeBadSignature}
	case errors.Is(err, wxnotify.ErrBody):
		return result{status: http.StatusBadRequest, code: "INVALID_BODY", message: "body is not a notification", outcome: OutcomeInvalid}
	case errors.Is(err, wxsign.ErrAlgorithm):
		return result{status: http.StatusBadRequest, code: "UNSUPPORTED_ALGORITHM", message: "resource algorithm must be AEAD_AES_256_GCM", outcome: OutcomeDecryptError}
	case errors.Is(err, wxsign.ErrDecrypt):
		return result{status: http.StatusBadRequest, code: "DECRYPT_FAILED", message: "resource does not decrypt with the APIv3 key", outcome: OutcomeDecryptError}
	}
	return result{status: http.StatusInternalServerError, code: apigw.CodeInternal, message: "verification unavailable", outcome: OutcomeStoreError}
}

// record is the notification record: the audit trail of what arrived.
type record struct {
	ID          string `dynamodbav:"id"`
	EventType   string `dynamodbav:"event_type"`
	Channel     string `dynamodbav:"channel"`
	CreateTime  string `dynamodbav:"create_time"`
	Summary     string `dynamodbav:"summary,omitempty"`
	Serial      string `dynamodbav:"serial"`
	ReceivedAt  string `dynamodbav:"received_at"`
	BusinessKey string `dynamodbav:"business_key,omitempty"`
	Outcome     string `dynamodbav:"outcome"`
	Plaintext   string `dynamodbav:"plaintext"` // decrypted resource, kept for audit (never logged)
}

// apply commits the notification exactly once and returns its outcome.
func (h *Handler) apply(ctx context.Context, ch string, n *wxnotify.Notification, eff *effect, now time.Time) (string, error) {
	expires := now.Add(store.IdempotencyTTL)
	rec := record{ID: n.ID, EventType: n.EventType, Channel: ch, CreateTime: n.CreateTime, Summary: n.Summary, Serial: n.Serial,
		ReceivedAt: ledger.WechatTime(now), Plaintext: string(n.Plaintext), Outcome: OutcomeAccepted}
	if eff == nil {
		rec.Outcome = OutcomeIgnored
		err := h.deps.Store.Put(ctx, &store.Put{Key: ledger.NotificationKey(n.ID), Value: rec, Expires: expires, IfNotExists: true})
		if errors.Is(err, store.ErrDuplicate) {
			return OutcomeDuplicate, nil
		}
		return OutcomeIgnored, err
	}
	rec.BusinessKey = eff.businessKey
	detail, _ := json.Marshal(map[string]any{"notification_id": n.ID, "event_type": n.EventType, "channel": ch, "ledger": eff.summary})
	ev := domainevent.Event{ID: n.ID, DetailType: n.EventType, Detail: detail, CreatedAt: ledger.WechatTime(now)}
	records := func(outcome string) []store.Op {
		rec.Outcome = outcome
		return []store.Op{
			&store.Put{Key: ledger.NotificationKey(n.ID), Value: rec, Expires: expires, IfNotExists: true},
			&store.Put{Key: ledger.EventKey(n.EventType, eff.businessKey), Value: map[string]any{"notification_id": n.ID, "at": rec.ReceivedAt},
				Expires: expires, IfNotExists: true},
		}
	}
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			// Concurrent deliveries of one notification race on the same
			// items; after a short pause the loser sees a clean duplicate.
			if serr := sleep(ctx, time.Duration(10+rand.IntN(40))*time.Millisecond*time.Duration(attempt)); serr != nil {
				return "", err
			}
		}
		err = h.deps.Store.Transact(ctx, append(records(OutcomeAccepted), eff.op, domainevent.OutboxPut(ev, now))...)
		var tx *store.TxError
		switch {
		case err == nil:
			if perr := domainevent.Flush(ctx, h.deps.Store, h.deps.Events, ev); perr != nil {
				h.deps.Logger().WarnContext(ctx, "domain event left in the outbox", "id", n.ID, "error", perr)
			}
			return OutcomeAccepted, nil
		case !errors.As(err, &tx) || len(tx.Reasons) < 3:
			if errors.Is(err, store.ErrContention) {
				continue
			}
			return "", err
		case errors.Is(tx.Reasons[0], store.ErrDuplicate), errors.Is(tx.Reasons[1], store.ErrDuplicate):
			return OutcomeDuplicate, nil
		case tx.Reasons[2] != nil && !errors.Is(tx.Reasons[2], store.ErrContention):
			return h.applyWithoutEffect(ctx, n, eff, tx.Reasons[2], records, now)
		default:
			continue // contention
		}
	}
	return "", err
}

// applyWithoutEffect records a notification whose state change is not
// allowed: the state already moved on (superseded: a query or an earlier
// event applied it), or it disagrees (anomaly: e.g. paid after closed), which
// is stored for reconciliation instead of being dropped.
func (h *Handler) applyWithoutEffect(ctx context.Context, n *wxnotify.Notification, eff *effect, reason error,
	records func(string) []store.Op, now time.Time) (string, error) {
	outcome := OutcomeAnomaly
	var ce *store.ConditionError
	current := ""
	if errors.As(reason, &ce) && ce.Decode != nil {
		var cur map[string]any
		if ce.Decode(&cur) == nil {
			current, _ = cur[eff.stateAttr].(string)
		}
	}
	if slices.Contains(eff.superseded, current) || len(eff.op.(*store.Update).ExpectBefore) > 0 {
		outcome = OutcomeSuperseded
	}
	ops := records(outcome)
	if outcome == OutcomeAnomaly {
		ops = append(ops, &store.Put{Key: store.Key{PK: "ANOMALY#" + n.ID, SK: "ANOMALY"},
			Index: store.IndexKey{PK: "ANOMALY#OPEN", SK: ledger.WechatTime(now) + "#" + n.ID},
			Value: map[string]any{"notification_id": n.ID, "event_type": n.EventType, "business_key": eff.businessKey,
				"current_state": current, "detected_at": ledger.WechatTime(now)}, IfNotExists: true})
	}
	err := h.deps.Store.Transact(ctx, ops...)
	var tx *store.TxError
	if errors.As(err, &tx) && (errors.Is(tx.Reasons[0], store.ErrDuplicate) || errors.Is(tx.Reasons[1], store.ErrDuplicate)) {
		return OutcomeDuplicate, nil
	}
	if err != nil {
		return "", err
	}
	if outcome == OutcomeAnomaly {
		h.deps.Logger().WarnContext(ctx, "notification conflicts with the ledger; stored for reconciliation",
			"id", n.ID, "event_type", n.EventType, "business_key", eff.businessKey, "current_state", current)
	}
	return outcome, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
