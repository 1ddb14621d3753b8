package coupons

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Request numbers.
//
// Every WeChat call that carries a request number (out_request_no,
// upload_request_no, use_request_no, return_request_no,
// deactivate_request_no, modify_budget_request_no, delete_request_no,
// add_request_no) goes through run:
//
//  1. The number is the caller's (validated) or generated. A generated
//     number is remembered in a slot keyed by (kind, business scope, digest
//     of the normalised request), written with PutIdempotent, so the same
//     request retried finds the same number.
//  2. The exact call (method, path, query, body with the number and any
//     generated field such as use_time) is stored as a PENDING request
//     record with PutIdempotent(digest) BEFORE it is sent. A retry of a
//     PENDING or FAILED record re-sends the stored call byte for byte; a
//     DONE record answers its stored result without calling WeChat; the
//     same number with a different request is a 409.
//  3. Success commits, in one transaction, the record as DONE with our
//     answer, the ledger changes, and (for state transitions of one coupon)
//     the removal of the slot, so a later, new intent gets a new number.
//     A WeChat business error (4xx) marks the record FAILED and frees the
//     slot. An unknown outcome (5xx after the client's retries, transport
//     failure, unverifiable answer) leaves it PENDING: the caller retries
//     the same request and WeChat sees the same number.

// Request kinds: the record and slot namespaces.
const (
	kindCreateStock   = "create_stock"
	kindModifyStock   = "modify_stock"
	kindBudget        = "budget"
	kindUpload        = "upload_codes"
	kindDeleteCode    = "delete_code"
	kindUse           = "use"
	kindSend          = "send"
	kindAssociate     = "associate"
	kindDisassociate  = "disassociate"
	kindReturn        = "return"
	kindDeactivate    = "deactivate"
	kindPlugin        = "plugin_send"
	kindPayGiftCreate = "paygift_create"
	kindPayGiftAdd    = "paygift_add"
	kindPayGiftDelete = "paygift_delete"
)

// wxCall is one WeChat Pay call as stored in a request record.
type wxCall struct {
	Method string
	Path   string
	Query  url.Values
	Body   json.RawMessage
}

// request is the client request of a stored call.
func (c wxCall) request() wxpay.Request {
	req := wxpay.Request{Method: c.Method, Path: c.Path, Query: c.Query}
	if len(c.Body) > 0 {
		req.Body = c.Body
	}
	return req
}

// op describes one request-numbered WeChat call.
type op struct {
	kind  string
	scope string // business key of the intent: stock, stock#code, activity...
	// supplied is the caller's request number ("" generates one); field
	// and maxLen name and bound it.
	supplied string
	field    string
	maxLen   int
	// input is the normalised caller request without the request number
	// and generated fields: its digest identifies the intent.
	input any
	// coupon is set for the transitions of one coupon (use, associate,
	// disassociate, return, deactivate): see onCoupon.
	coupon *couponStage
	// build renders the call for a request number.
	build func(no string) (wxCall, error)
}

// outcome is what a successful call produces: our answer and the ledger
// writes committed with the DONE record.
type outcome struct {
	answer any
	ops    []store.Op
}

// digestOf is the SHA-256 of kind and the canonical JSON of v.
func digestOf(kind string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("coupons: digest: %w", err)
	}
	var canon any
	if err := json.Unmarshal(b, &canon); err != nil {
		return "", fmt.Errorf("coupons: digest: %w", err)
	}
	b, err = json.Marshal(canon) // maps marshal with sorted keys
	if err != nil {
		return "", fmt.Errorf("coupons: digest: %w", err)
	}
	sum := sha256.Sum256(append([]byte(kind+"\n"), b...))
	return hex.EncodeToString(sum[:]), nil
}

// requestNumber validates a caller's request number.
func requestNumber(field, no string, maxLen int) error {
	if no != "" && !ledger.ValidRequestNo(no, maxLen) {
		return apigw.Errorf(http.StatusBadRequest, CodeInvalidRequestNo,
			"%s must be 1..%d characters of letters, digits and |_*- (got %q)", field, maxLen, no)
	}
	return nil
}

// run executes a request-numbered call: number, record before the call,
// call, ledger. done turns WeChat's verified answer into our outcome.
func (h *Handler) run(ctx context.Context, o op, wxOut any, done func(no string, call wxCall) (outcome, error)) (*apigw.Response, error) {
	if err := requestNumber(o.field, o.supplied, o.maxLen); err != nil {
		return nil, err
	}
	client, err := h.client()
	if err != nil {
		return nil, err
	}
	digest, err := digestOf(o.kind, o.input)
	if err != nil {
		return nil, err
	}
	now := h.now()
	stamp := ledger.WechatTime(now)
	no := o.supplied
	var slot store.Key
	if no == "" {
		creds, err := h.creds(ctx)
		if err != nil {
			return nil, err
		}
		fresh, err := ledger.NewRequestNo(creds.MchID, now)
		if err != nil {
			return nil, err
		}
		slot = ledger.CouponSlotKey(o.kind, o.scope, o.coupon.slotDigest(digest))
		var prev ledger.CouponSlot
		created, err := h.deps.Store.PutIdempotent(ctx, &store.Put{Key: slot, Expires: now.Add(store.IdempotencyTTL),
			Value: ledger.CouponSlot{Kind: o.kind, RequestNo: fresh, CreatedAt: stamp}}, digest, &prev)
		if err != nil {
			return nil, fmt.Errorf("coupons: %s: reserve request number: %w", o.kind, err)
		}
		no = fresh
		if !created {
			no = prev.RequestNo
		}
	}
	call, err := o.build(no)
	if err != nil {
		return nil, err
	}
	// The call's signature is computed while its record is written.
	prepared := client.Prepare(ctx, call.request())
	rec := ledger.CouponRequest{Kind: o.kind, RequestNo: no, Scope: o.scope, State: ledger.RequestPending, Method: call.Method,
		Path: call.Path, Query: call.Query.Encode(), BodyJSON: string(call.Body), CreatedAt: stamp, UpdatedAt: stamp,
		LeaseUntil: now.Add(requestLease).Unix()}
	recKey := ledger.CouponRequestKey(o.kind, no)
	var stored ledger.CouponRequest
	created, err := h.deps.Store.PutIdempotent(ctx, &store.Put{Key: recKey, Value: rec}, digest, &stored)
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, apigw.Errorf(http.StatusConflict, CodeRequestNoReused,
			"%s %s was already used for a different request", o.field, no)
	case err != nil:
		return nil, fmt.Errorf("coupons: %s: record request %s: %w", o.kind, no, err)
	case !created && stored.State == ledger.RequestDone:
		return replay(stored)
	case !created:
		// PENDING or FAILED: wait for a concurrent sender, or take over and
		// send exactly what was stored.
		done, err := h.awaitRequest(ctx, recKey, stored)
		if err != nil || done != nil {
			return done, err
		}
		q, err := url.ParseQuery(stored.Query)
		if err != nil {
			return nil, fmt.Errorf("coupons: %s: stored query of %s: %w", o.kind, no, err)
		}
		call = wxCall{Method: stored.Method, Path: stored.Path, Query: q}
		if stored.BodyJSON != "" {
			call.Body = json.RawMessage(stored.BodyJSON)
		}
		prepared = client.Prepare(ctx, call.request()) // exactly what was stored
	}

	if _, err := client.Send(ctx, prepared, wxOut); err != nil {
		return nil, h.callFailed(ctx, o, recKey, slot, no, err)
	}
	res, err := done(no, call)
	if err != nil {
		return nil, err
	}
	answer, err := json.Marshal(res.answer)
	if err != nil {
		return nil, fmt.Errorf("coupons: %s: encode answer: %w", o.kind, err)
	}
	ops := []store.Op{&store.Update{Key: recKey, Set: map[string]any{"state": ledger.RequestDone, "result_json": string(answer),
		"updated_at": ledger.WechatTime(h.now())}, ExpectIn: map[string][]any{"state": {ledger.RequestPending, ledger.RequestFailed}}}}
	ops = append(ops, res.ops...)
	o.coupon.mark(ops, o.kind, digest, no)
	if err := h.deps.Store.Transact(ctx, ops...); err != nil {
		var tx *store.TxError
		if errors.As(err, &tx) && errors.Is(tx.Reasons[0], store.ErrConflict) {
			// A concurrent retry of the same number finished first: its
			// answer is ours.
			var cur ledger.CouponRequest
			if gerr := h.deps.Store.Get(ctx, recKey, &cur); gerr == nil && cur.State == ledger.RequestDone {
				return replay(cur)
			}
		}
		return nil, fmt.Errorf("coupons: %s: WeChat Pay accepted %s %s but the ledger write failed (retry the same request): %w",
			o.kind, o.field, no, err)
	}
	return &apigw.Response{Status: http.StatusOK, Body: json.RawMessage(answer)}, nil
}

// requestLease is how long the request that sends a call owns it; a crashed
// owner's lease expires and a retry takes over.
const requestLease = 15 * time.Second

// requestWait bounds how long a retry waits for a concurrent owner before
// answering 409 IN_PROGRESS.
const requestWait = 8 * time.Second

// awaitRequest handles a replay of a request record that is not DONE: when
// another request holds an unexpired lease (it is calling WeChat Pay right
// now) it waits for its answer instead of sending the call a second time;
// otherwise it takes the lease (nil, nil: the caller sends). Identical
// concurrent requests therefore make exactly one WeChat call.
func (h *Handler) awaitRequest(ctx context.Context, key store.Key, rec ledger.CouponRequest) (*apigw.Response, error) {
	deadline := time.Now().Add(requestWait)
	for {
		now := h.now()
		lease := map[string]any{"lease_until": now.Add(requestLease).Unix()}
		err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: lease,
			ExpectIn: map[string][]any{"state": {ledger.RequestPending, ledger.RequestFailed}}, ExpectBefore: map[string]any{"lease_until": now.Unix()}})
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
		if err := h.deps.Store.Get(ctx, key, &rec); err != nil {
			return nil, err
		}
		if rec.State == ledger.RequestDone {
			return replay(rec)
		}
		if time.Now().After(deadline) {
			return nil, &apigw.Error{Status: http.StatusConflict, Code: "IN_PROGRESS",
				Message: "the same request is being sent to WeChat Pay by another call; send it again shortly"}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// replay answers a DONE request record with its stored answer.
func replay(rec ledger.CouponRequest) (*apigw.Response, error) {
	return &apigw.Response{Status: http.StatusOK, Headers: map[string]string{"x-idempotent-replay": "true"},
		Body: json.RawMessage(rec.ResultJSON)}, nil
}

// callFailed records a failed call: a WeChat business error marks the
// record FAILED and frees the slot; an unknown outcome leaves both so a
// retry re-sends the same number.
func (h *Handler) callFailed(ctx context.Context, o op, recKey, slot store.Key, no string, err error) error {
	var ae *wxpay.APIError
	if errors.As(err, &ae) && !ae.Retryable() {
		ops := []store.Op{&store.Update{Key: recKey, Set: map[string]any{"state": ledger.RequestFailed, "error_code": ae.Code,
			"error_message": ae.Message, "updated_at": ledger.WechatTime(h.now()), "lease_until": 0},
			ExpectIn: map[string][]any{"state": {ledger.RequestPending, ledger.RequestFailed}}}}
		if slot.PK != "" {
			ops = append(ops, &store.Delete{Key: slot})
		}
		if terr := h.deps.Store.Transact(ctx, ops...); terr != nil {
			h.deps.Logger().WarnContext(ctx, "coupons: could not mark request failed", "kind", o.kind, "request_no", no, "error", terr)
		}
		return wechatError(err)
	}
	if terr := h.deps.Store.Update(ctx, &store.Update{Key: recKey, Set: map[string]any{"last_error": err.Error(),
		"updated_at": ledger.WechatTime(h.now()), "lease_until": 0}, ExpectIn: map[string][]any{"state": {ledger.RequestPending, ledger.RequestFailed}}}); terr != nil {
		h.deps.Logger().WarnContext(ctx, "coupons: could not note the failed attempt", "kind", o.kind, "request_no", no, "error", terr)
	}
	h.deps.Logger().WarnContext(ctx, "coupons: WeChat Pay outcome unknown; the request number is kept for the retry",
		"kind", o.kind, "request_no", no, "error", err)
	return &apigw.Error{Status: http.StatusBadGateway, Code: CodeOutcomeUnknown,
		Message: fmt.Sprintf("WeChat Pay did not confirm the call; retry the same request: it reuses %s %s", o.field, no), Err: err}
}

// wechatError maps a failed WeChat call to our answer: business errors keep
// WeChat's status and code; our own signature problems, server errors and
// transport failures are 502; rate limiting is 503.
func wechatError(err error) error {
	var ae *wxpay.APIError
	switch {
	case errors.As(err, &ae) && ae.StatusCode == http.StatusTooManyRequests:
		return &apigw.Error{Status: http.StatusServiceUnavailable, Code: "TRY_AGAIN", Message: "WeChat Pay rate limit; retry the same request later", Err: err}
	case errors.As(err, &ae) && ae.StatusCode == http.StatusUnauthorized:
		return &apigw.Error{Status: http.StatusBadGateway, Code: apigw.CodeUpstream, Message: "WeChat Pay rejected the request signature", Err: err}
	case errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500:
		return &apigw.Error{Status: ae.StatusCode, Code: ae.Code, Message: "WeChat Pay: " + ae.Message, Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apigw.Error{Status: http.StatusGatewayTimeout, Code: apigw.CodeUpstream, Message: "WeChat Pay did not answer in time", Err: err}
	}
	return &apigw.Error{Status: http.StatusBadGateway, Code: apigw.CodeUpstream, Message: "WeChat Pay call failed", Err: err}
}

// query performs a read-only call (no request number) and returns WeChat's
// verified answer.
func (h *Handler) query(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	client, err := h.client()
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: path, Query: q}, nil)
	if err != nil {
		return nil, wechatError(err)
	}
	return json.RawMessage(resp.Body), nil
}
