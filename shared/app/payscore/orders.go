package payscore

import (
	"context"
	"crypto/rand"
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

// orderView is an order as the routes answer it.
type orderView struct {
	ledger.PayScoreOrder
	// CollectionState is collection.state, derived for rows the notify
	// function wrote.
	CollectionState string `json:"collection_state,omitempty"`
	// Collection is WeChat's collection object (details with
	// transaction_id, paid_type, promotions) once known.
	Collection json.RawMessage `json:"collection,omitempty"`
	// Replayed marks a create answered from the stored result.
	Replayed bool `json:"replayed,omitempty"`
}

func view(o *ledger.PayScoreOrder) orderView {
	v := orderView{PayScoreOrder: *o, CollectionState: o.Collection()}
	if o.CollectionJSON != "" && json.Valid([]byte(o.CollectionJSON)) {
		v.Collection = json.RawMessage(o.CollectionJSON)
	}
	return v
}

func isTrue(v string) bool { return v == "true" || v == "1" }

// requestDigest identifies a create request: the same out_order_no with
// another digest is a different order.
func requestDigest(in *createRequest) (string, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return "", fmt.Errorf("payscore: digest: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// requireAuthorized enforces "only for AVAILABLE users" before create: the
// cached state decides; without a cached row WeChat is asked once (A4).
func (h *Handler) requireAuthorized(ctx context.Context, svc service, openid string) error {
	var a ledger.PayScoreAuthorization
	err := h.deps.Store.Get(ctx, ledger.AuthorizationKey(svc.ID, openid), &a)
	switch {
	case errors.Is(err, store.ErrNotFound):
		got, rerr := h.refreshUser(ctx, svc, openid)
		if rerr != nil {
			return rerr
		}
		a = *got
	case err != nil:
		return err
	}
	if a.State != ledger.PayScoreAvailable {
		return apigw.Errorf(http.StatusForbidden, CodeUserNotAuthorized,
			"user %s has not authorized the Pay Score service (state %s): pre-authorize with POST /payscore/authorizations and let the user open the service",
			openid, a.State)
	}
	return nil
}

// createOrder is POST /payscore/orders: validate, check the user's
// authorization, record the request (idempotent on out_order_no), create at
// WeChat (need_user_confirm=false) and record the answer.
func (h *Handler) createOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in createRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if err := h.validateCreate(&in); err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	notifyURL := h.deps.NotifyURL(req, notifyChannel)
	if err := checkNotifyURL(notifyURL); err != nil {
		return nil, err
	}
	digest, err := requestDigest(&in)
	if err != nil {
		return nil, err
	}
	body := &wxCreate{OutOrderNo: in.OutOrderNo, AppID: svc.AppID, ServiceID: svc.ID, ServiceIntroduction: in.ServiceIntroduction,
		PostPayments: in.PostPayments, PostDiscounts: in.PostDiscounts, TimeRange: in.TimeRange, Location: in.Location,
		RiskFund: in.RiskFund, Attach: in.Attach, NotifyURL: notifyURL, OpenID: in.OpenID, NeedUserConfirm: false, Device: in.Device}
	// The create's signature is computed while the ledger is read and
	// written below (wxpay.Client.Prepare).
	call := h.deps.WeChat.Prepare(ctx, wxpay.Request{Method: http.MethodPost, Path: wechatCreatePath, Body: body})
	key := ledger.PayScoreOrderKey(in.OutOrderNo)
	// A replay of a recorded request needs no authorization check.
	var prior ledger.PayScoreOrder
	switch err := h.deps.Store.Get(ctx, key, &prior); {
	case errors.Is(err, store.ErrNotFound) || (err == nil && prior.State == ledger.PayScoreRejected):
		if err := h.requireAuthorized(ctx, svc, in.OpenID); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	stamp := ledger.WechatTime(h.now())
	row := ledger.PayScoreOrder{OutOrderNo: in.OutOrderNo, ServiceID: svc.ID, AppID: svc.AppID, OpenID: in.OpenID,
		State: ledger.PayScoreCreating, ServiceIntroduction: in.ServiceIntroduction, PostPayments: in.PostPayments,
		PostDiscounts: in.PostDiscounts, RiskFund: in.RiskFund, TimeRange: in.TimeRange, Location: in.Location,
		Device: in.Device, Attach: in.Attach, NotifyURL: notifyURL, CreatedAt: stamp, UpdatedAt: stamp, Source: "api"}
	// The request that records the row owns the create: its lease keeps
	// concurrent replays of the same request from calling WeChat a second
	// time while the first call is in flight.
	lease, err := newLease(h.now())
	if err != nil {
		return nil, err
	}
	row.LeaseUntil = lease
	var existing ledger.PayScoreOrder
	created, err := h.deps.Store.PutIdempotent(ctx, &store.Put{Key: key, Value: row}, digest, &existing)
	switch {
	case errors.Is(err, store.ErrConflict):
		// Never change parameters under the same number (pitfalls P4).
		return nil, apigw.Errorf(http.StatusConflict, CodeOutOrderNoReused,
			"out_order_no %s was already used for a different request; use a new out_order_no", in.OutOrderNo)
	case err != nil:
		return nil, err
	case created:
		return h.sendCreate(ctx, svc, call, body.OutOrderNo, lease)
	}
	return h.replayCreate(ctx, svc, call, body.OutOrderNo, existing)
}

// createWait bounds how long a replay waits for a concurrent create of the
// same order before answering 503 (the client retries the same request).
const createWait = 8 * time.Second

// createPoll is how often a waiting replay looks at the row again.
const createPoll = 40 * time.Millisecond

// replayCreate answers a create whose row exists. A settled order is
// replayed as recorded. An order still CREATING (an earlier attempt's
// outcome is unknown) or REJECTED is retried by at most one request at a
// time: the one that takes the lease queries first (CREATING) and creates
// only when WeChat has no such order; the others wait for its answer and
// replay it.
func (h *Handler) replayCreate(ctx context.Context, svc service, call *wxpay.Call, no string, cur ledger.PayScoreOrder) (*apigw.Response, error) {
	key := ledger.PayScoreOrderKey(no)
	deadline := time.Now().Add(createWait)
	waited := false
	for {
		if cur.State != ledger.PayScoreCreating && cur.State != ledger.PayScoreRejected {
			v := view(&cur)
			v.Replayed = true
			return apigw.JSON(http.StatusOK, v), nil
		}
		if waited && cur.State == ledger.PayScoreRejected {
			// The concurrent create this request waited for was refused:
			// its answer is this request's answer too.
			return nil, apigw.Errorf(http.StatusConflict, CodeCreateRejected,
				"WeChat Pay refused the create of %s (%s); fix the cause and repeat the request", no, cur.LastError)
		}
		lease, err := h.takeLease(ctx, no, cur.State)
		switch {
		case err == nil && cur.State == ledger.PayScoreRejected:
			// WeChat created nothing, so creating again is safe.
			return h.sendCreate(ctx, svc, call, no, lease)
		case err == nil:
			return h.resumeCreate(ctx, svc, call, no, lease)
		case !errors.Is(err, store.ErrConflict):
			return nil, err
		case time.Now().After(deadline):
			return nil, tryAgain("another create of %s is still in flight; retry the same request shortly", no)
		}
		waited = true
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(createPoll):
		}
		if err := h.deps.Store.Get(ctx, key, &cur); err != nil {
			return nil, err
		}
	}
}

// resumeCreate settles a create whose earlier outcome is unknown: query
// first, create only when WeChat has no such order. The caller holds lease.
func (h *Handler) resumeCreate(ctx context.Context, svc service, call *wxpay.Call, no string, lease string) (*apigw.Response, error) {
	remote, qerr := h.queryOrder(ctx, svc, no)
	if wxpay.IsNotFound(qerr) {
		return h.sendCreate(ctx, svc, call, no, lease)
	}
	defer h.release(ctx, ledger.PayScoreOrderKey(no), lease)
	if qerr != nil {
		return nil, tryAgain("the outcome of an earlier create of %s is unknown and WeChat Pay could not be queried; retry the same request", no)
	}
	o, err := h.applyRemote(ctx, svc, remote)
	if err != nil {
		return nil, err
	}
	v := view(o)
	v.Replayed = true
	return apigw.JSON(http.StatusOK, v), nil
}

// sendCreate calls WeChat's create and records the outcome; the caller
// holds lease, which is given back when the outcome is recorded.
func (h *Handler) sendCreate(ctx context.Context, svc service, call *wxpay.Call, no string, lease string) (*apigw.Response, error) {
	key := ledger.PayScoreOrderKey(no)
	defer h.release(ctx, key, lease)
	var out wxOrder
	_, err := h.deps.WeChat.Send(ctx, call, &out)
	if err != nil {
		if definitive(err) {
			h.markRejected(ctx, key, err)
			return nil, h.wechatError("create", err)
		}
		// Unknown outcome (timeout, 5xx, unverifiable answer): query
		// before anything is retried.
		h.log.WarnContext(ctx, "payscore create outcome unknown; querying", "out_order_no", no, "error", err)
		remote, qerr := h.queryOrder(ctx, svc, no)
		switch {
		case qerr == nil:
			o, err := h.applyRemote(ctx, svc, remote)
			if err != nil {
				return nil, err
			}
			return apigw.JSON(http.StatusCreated, view(o)), nil
		case wxpay.IsNotFound(qerr):
			return nil, tryAgain("WeChat Pay did not answer the create of %s and has no such order: retry the same request", no)
		}
		return nil, tryAgain("WeChat Pay did not answer the create of %s and could not be queried: retry the same request (it queries first)", no)
	}
	if out.OutOrderNo == "" {
		out.OutOrderNo = no
	}
	o, err := h.applyRemote(ctx, svc, &out)
	if err != nil {
		return nil, err
	}
	if o.State != ledger.PayScoreDoing {
		// The guide: state != DOING means the no-confirm create failed
		// (the service answered like a need-confirm one).
		return nil, apigw.Errorf(http.StatusBadGateway, CodeUpstream,
			"WeChat Pay created %s in state %s, not DOING: the service_id is not in no-confirm mode", no, o.State)
	}
	return apigw.JSON(http.StatusCreated, view(o)), nil
}

// markRejected records a definitive refusal of the create.
func (h *Handler) markRejected(ctx context.Context, key store.Key, cause error) {
	msg := cause.Error()
	var ae *wxpay.APIError
	if errors.As(cause, &ae) {
		msg = ae.Code + ": " + ae.Message
	}
	err := h.deps.Store.Update(ctx, &store.Update{Key: key,
		Set:      map[string]any{"state": ledger.PayScoreRejected, "last_error": msg, "updated_at": ledger.WechatTime(h.now())},
		ExpectIn: map[string][]any{"state": {ledger.PayScoreCreating, ledger.PayScoreRejected}}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		h.log.ErrorContext(ctx, "payscore: record rejected create", "key", key.String(), "error", err)
	}
}

// getOrder is GET /payscore/orders/{out_order_no}; ?live=true asks WeChat
// (O2) and records what it reports.
func (h *Handler) getOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no := req.PathParams["out_order_no"]
	if err := checkOutOrderNo(no); err != nil {
		return nil, err
	}
	live := isTrue(req.Query("live"))
	var o ledger.PayScoreOrder
	err := h.deps.Store.Get(ctx, ledger.PayScoreOrderKey(no), &o)
	switch {
	case errors.Is(err, store.ErrNotFound) && !live:
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "no Pay Score order %s in the ledger (add ?live=true to ask WeChat Pay)", no)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	case !live:
		return apigw.JSON(http.StatusOK, view(&o)), nil
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	remote, err := h.queryOrder(ctx, svc, no)
	if err != nil {
		return nil, h.wechatError("query", err)
	}
	got, err := h.applyRemote(ctx, svc, remote)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, view(got)), nil
}

// leaseTTL bounds one WeChat call on an order (the client gives up after
// 10 s; a crashed container's lease expires by itself).
const leaseTTL = 30 * time.Second

// mutation is one merchant call on an existing order.
type mutation struct {
	action ledger.PayScoreAction
	body   any
	// check runs the rules that need the stored order (after the state
	// machine); nil for none.
	check func(o *ledger.PayScoreOrder) error
	// success turns WeChat's answer into the ledger change.
	success func(raw []byte, now time.Time) (map[string]any, *store.IndexKey)
	// applied tells, after an unknown outcome and a query, whether WeChat
	// carried the call out.
	applied func(o *ledger.PayScoreOrder) bool
}

// mutate runs a call on an order: state machine and row rules first (4xx,
// no WeChat call), then a lease so that one call per order is in flight,
// then WeChat, then the ledger. An unknown outcome is settled by a query.
func (h *Handler) mutate(ctx context.Context, no string, m mutation) (*apigw.Response, error) {
	key := ledger.PayScoreOrderKey(no)
	var o ledger.PayScoreOrder
	if err := h.deps.Store.Get(ctx, key, &o); errors.Is(err, store.ErrNotFound) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "no Pay Score order %s in the ledger", no)
	} else if err != nil {
		return nil, err
	}
	if o.State == ledger.PayScoreCreating {
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderPending, "the create of %s has not been confirmed yet: repeat the create request first", no)
	}
	if err := o.CheckTransition(m.action); err != nil {
		return nil, &apigw.Error{Status: http.StatusConflict, Code: CodeInvalidOrderState,
			Message: fmt.Sprintf("%s is not allowed: order %s is %s", m.action, no, o.Describe()), Err: err}
	}
	if m.check != nil {
		if err := m.check(&o); err != nil {
			return nil, err
		}
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	// The call's signature is computed while the lease is taken.
	path := wechatServiceOrderPrefix + url.PathEscape(no) + "/" + string(m.action)
	call := h.deps.WeChat.Prepare(ctx, wxpay.Request{Method: http.MethodPost, Path: path, Body: m.body})
	lease, err := h.acquire(ctx, &o, m.action)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	_, err = h.deps.WeChat.Send(ctx, call, &raw)
	if err == nil {
		now := h.now()
		set, index := m.success(raw, now)
		set["lease_until"], set["updated_at"] = "", ledger.WechatTime(now)
		uerr := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, Index: index, Expect: map[string]any{"lease_until": lease}})
		if uerr != nil && !errors.Is(uerr, store.ErrConflict) {
			return nil, uerr
		}
		var got ledger.PayScoreOrder
		if err := h.deps.Store.Get(ctx, key, &got); err != nil {
			return nil, err
		}
		return apigw.JSON(http.StatusOK, view(&got)), nil
	}
	h.release(ctx, key, lease)
	if definitive(err) {
		if wxpay.IsCode(err, "INVALID_ORDER_STATE", "ORDER_DONE", "ORDER_CANCELED") {
			// Our row was behind WeChat: record WeChat's view.
			if remote, qerr := h.queryOrder(ctx, svc, no); qerr == nil {
				if _, aerr := h.applyRemote(ctx, svc, remote); aerr != nil {
					h.log.ErrorContext(ctx, "payscore: record queried order", "out_order_no", no, "error", aerr)
				}
			}
		}
		return nil, h.wechatError(string(m.action), err)
	}
	h.log.WarnContext(ctx, "payscore call outcome unknown; querying", "out_order_no", no, "call", m.action, "error", err)
	remote, qerr := h.queryOrder(ctx, svc, no)
	if qerr != nil {
		return nil, tryAgain("WeChat Pay did not confirm the %s of %s and could not be queried; retry the same request", m.action, no)
	}
	got, aerr := h.applyRemote(ctx, svc, remote)
	if aerr != nil {
		return nil, aerr
	}
	if m.applied(got) {
		return apigw.JSON(http.StatusOK, view(got)), nil
	}
	return nil, tryAgain("WeChat Pay did not carry out the %s of %s (the order is %s); retry the same request", m.action, no, got.Describe())
}

// newLease makes a lease value: its expiry (comparable as a string with
// ledger.WechatTime) and a nonce that makes it this request's own.
func newLease(now time.Time) (string, error) {
	nonce := make([]byte, 6)
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("payscore: lease nonce: %w", err)
	}
	return ledger.WechatTime(now.Add(leaseTTL)) + "#" + hex.EncodeToString(nonce), nil
}

// takeLease takes the order's lease when the order is still in state and
// no other call holds an unexpired lease; store.ErrConflict otherwise.
func (h *Handler) takeLease(ctx context.Context, no string, state string) (string, error) {
	now := h.now()
	lease, err := newLease(now)
	if err != nil {
		return "", err
	}
	err = h.deps.Store.Update(ctx, &store.Update{Key: ledger.PayScoreOrderKey(no), Set: map[string]any{"lease_until": lease},
		Expect: map[string]any{"state": state}, ExpectBefore: map[string]any{"lease_until": ledger.WechatTime(now)}})
	if err != nil {
		return "", err
	}
	return lease, nil
}

// acquire takes the order's lease for a call: the state must not have
// changed since it was read and no other call may hold an unexpired lease.
func (h *Handler) acquire(ctx context.Context, o *ledger.PayScoreOrder, action ledger.PayScoreAction) (string, error) {
	lease, err := h.takeLease(ctx, o.OutOrderNo, o.State)
	if errors.Is(err, store.ErrConflict) {
		var cur ledger.PayScoreOrder
		if gerr := h.deps.Store.Get(ctx, ledger.PayScoreOrderKey(o.OutOrderNo), &cur); gerr == nil && cur.CheckTransition(action) != nil {
			return "", apigw.Errorf(http.StatusConflict, CodeInvalidOrderState, "%s is not allowed: order %s is %s", action, o.OutOrderNo, cur.Describe())
		}
		return "", apigw.Errorf(http.StatusConflict, CodeOrderBusy, "another call on order %s is in flight; retry shortly", o.OutOrderNo)
	}
	return lease, err
}

// release gives the lease back after a failed call.
func (h *Handler) release(ctx context.Context, key store.Key, lease string) {
	err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: map[string]any{"lease_until": ""}, Expect: map[string]any{"lease_until": lease}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		h.log.ErrorContext(ctx, "payscore: release lease", "key", key.String(), "error", err)
	}
}

// completeOrder is POST /payscore/orders/{no}/complete (O5): WeChat then
// deducts the user; the order waits in the sweep's partition.
func (h *Handler) completeOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no := req.PathParams["out_order_no"]
	if err := checkOutOrderNo(no); err != nil {
		return nil, err
	}
	var in completeRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if err := checkTotal(in.PostPayments, in.PostDiscounts, in.TotalAmount); err != nil {
		return nil, err
	}
	if err := checkLengths(limit{"goods_tag", in.GoodsTag, maxGoodsTag}); err != nil {
		return nil, err
	}
	if in.TimeRange != nil {
		if err := checkLengths(limit{"time_range.end_time_remark", in.TimeRange.EndTimeRemark, maxTimeRemark}); err != nil {
			return nil, err
		}
	}
	if in.Location != nil {
		if err := checkLengths(limit{"location.end_location", in.Location.EndLocation, maxLocation}); err != nil {
			return nil, err
		}
	}
	if err := checkDevice(in.Device); err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	var tr ledger.PayScoreTimeRange
	var loc *ledger.PayScoreLocation
	body := map[string]any{"appid": svc.AppID, "service_id": svc.ID, "post_payments": in.PostPayments, "total_amount": *in.TotalAmount}
	if len(in.PostDiscounts) > 0 {
		body["post_discounts"] = in.PostDiscounts
	}
	if in.ProfitSharing {
		body["profit_sharing"] = true
	}
	if in.GoodsTag != "" {
		body["goods_tag"] = in.GoodsTag
	}
	if in.Device != nil {
		body["device"] = in.Device
	}
	if in.Location != nil && in.Location.EndLocation != "" {
		body["location"] = in.Location
	}
	return h.mutate(ctx, no, mutation{action: ledger.PayScoreComplete, body: body,
		check: func(o *ledger.PayScoreOrder) error {
			limit := h.cfg.RiskCap
			what := "the service's risk cap"
			if h.cfg.Mode == ledger.PayScoreDepositFree && o.RiskFund != nil {
				// 先免: at most the create-time risk_fund.amount (2.2 O5).
				limit, what = o.RiskFund.Amount, "the order's risk_fund.amount"
			}
			if *in.TotalAmount > limit {
				return apigw.Errorf(http.StatusBadRequest, CodeOverRiskCap, "total_amount %d fen exceeds %s of %d fen", *in.TotalAmount, what, limit)
			}
			if o.TimeRange != nil {
				tr = *o.TimeRange
			}
			if o.Location != nil {
				l := *o.Location
				loc = &l
			}
			if in.Location != nil && in.Location.EndLocation != "" {
				if loc == nil {
					loc = &ledger.PayScoreLocation{}
				}
				loc.EndLocation = in.Location.EndLocation
			}
			if in.TimeRange != nil && in.TimeRange.EndTime != "" {
				tr.EndTime, tr.EndTimeRemark = in.TimeRange.EndTime, in.TimeRange.EndTimeRemark
				body["time_range"] = in.TimeRange
			}
			if tr.EndTime == "" {
				return paramError("time_range.end_time is required: it was not given when the order was created")
			}
			end, err := checkTime("time_range.end_time", tr.EndTime)
			if err != nil {
				return err
			}
			if start, err := ledger.ParsePayScoreTime(tr.StartTime); err == nil && end.Before(start) {
				return apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "time_range.end_time %s is before start_time %s", tr.EndTime, tr.StartTime)
			}
			return nil
		},
		success: func(_ []byte, now time.Time) (map[string]any, *store.IndexKey) {
			set := map[string]any{"state": ledger.PayScoreDoing, "state_description": ledger.PayScoreMchComplete,
				"collection_state": ledger.PayScoreUserPaying, "total_amount": *in.TotalAmount, "post_payments": in.PostPayments,
				"post_discounts": in.PostDiscounts, "time_range": tr, "completed_at": ledger.WechatTime(now)}
			if loc != nil {
				set["location"] = loc
			}
			return set, awaitingIndex(no, now)
		},
		applied: func(o *ledger.PayScoreOrder) bool {
			return o.StateDescription == ledger.PayScoreMchComplete || o.State == ledger.PayScoreDone
		},
	})
}

// modifyOrder is POST /payscore/orders/{no}/modify (O4): only while the
// deduction is pending, and only downwards.
func (h *Handler) modifyOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no := req.PathParams["out_order_no"]
	if err := checkOutOrderNo(no); err != nil {
		return nil, err
	}
	var in modifyRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if err := checkTotal(in.PostPayments, in.PostDiscounts, in.TotalAmount); err != nil {
		return nil, err
	}
	if err := checkReason(in.Reason); err != nil {
		return nil, err
	}
	if err := checkDevice(in.Device); err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"appid": svc.AppID, "service_id": svc.ID, "post_payments": in.PostPayments,
		"total_amount": *in.TotalAmount, "reason": in.Reason}
	if len(in.PostDiscounts) > 0 {
		body["post_discounts"] = in.PostDiscounts
	}
	if in.Device != nil {
		body["device"] = in.Device
	}
	total := *in.TotalAmount
	return h.mutate(ctx, no, mutation{action: ledger.PayScoreModify, body: body,
		check: func(o *ledger.PayScoreOrder) error {
			if total >= o.TotalAmount {
				return apigw.Errorf(http.StatusBadRequest, CodeAmountNotLower, "total_amount %d fen is not lower than the current %d fen: the amount may only go down", total, o.TotalAmount)
			}
			return nil
		},
		success: func(_ []byte, _ time.Time) (map[string]any, *store.IndexKey) {
			return map[string]any{"total_amount": total, "post_payments": in.PostPayments, "post_discounts": in.PostDiscounts,
				"modify_reason": in.Reason}, nil
		},
		applied: func(o *ledger.PayScoreOrder) bool { return o.TotalAmount == total },
	})
}

// cancelOrder is POST /payscore/orders/{no}/cancel (O3): before complete only.
func (h *Handler) cancelOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no := req.PathParams["out_order_no"]
	if err := checkOutOrderNo(no); err != nil {
		return nil, err
	}
	var in cancelRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if err := checkReason(in.Reason); err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	return h.mutate(ctx, no, mutation{action: ledger.PayScoreCancel,
		body: map[string]any{"appid": svc.AppID, "service_id": svc.ID, "reason": in.Reason},
		success: func(_ []byte, _ time.Time) (map[string]any, *store.IndexKey) {
			return map[string]any{"state": ledger.PayScoreRevoked, "state_description": "", "cancel_reason": in.Reason}, nil
		},
		applied: func(o *ledger.PayScoreOrder) bool { return o.State == ledger.PayScoreRevoked },
	})
}

// syncOrder is POST /payscore/orders/{no}/sync (O7, type Order_Paid): the
// user paid through another channel; WeChat stops deducting.
func (h *Handler) syncOrder(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no := req.PathParams["out_order_no"]
	if err := checkOutOrderNo(no); err != nil {
		return nil, err
	}
	var in syncRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if in.Type != syncOrderPaid {
		return nil, paramError("type %q is not supported: the only sync type is %s", in.Type, syncOrderPaid)
	}
	if in.Detail == nil || in.Detail.PaidTime == "" {
		return nil, paramError("detail.paid_time is required with type %s", syncOrderPaid)
	}
	paid, err := ledger.ParsePaidTime(in.Detail.PaidTime)
	if err != nil || (len(in.Detail.PaidTime) != 14 && len(in.Detail.PaidTime) != 8) {
		return nil, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "detail.paid_time %q must be yyyyMMddHHmmss or yyyyMMdd in Asia/Shanghai time", in.Detail.PaidTime)
	}
	if paid.After(h.now().Add(5 * time.Minute)) {
		return nil, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "detail.paid_time %s is in the future", in.Detail.PaidTime)
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"appid": svc.AppID, "service_id": svc.ID, "type": syncOrderPaid,
		"detail": map[string]string{"paid_time": in.Detail.PaidTime}}
	return h.mutate(ctx, no, mutation{action: ledger.PayScoreSync, body: body,
		success: func(raw []byte, now time.Time) (map[string]any, *store.IndexKey) {
			set := map[string]any{"state": ledger.PayScoreDone, "state_description": ledger.PayScoreUserPaid,
				"collection_state": ledger.PayScoreUserPaid, "paid_time": in.Detail.PaidTime, "paid_type": "MCH",
				"settled_at": ledger.WechatTime(now)}
			var out wxOrder
			if json.Unmarshal(raw, &out) == nil && out.Collection != nil {
				set["paid_amount"] = out.Collection.PaidAmount
				if b, err := json.Marshal(out.Collection); err == nil {
					set["collection_json"] = string(b)
				}
			}
			return set, settledIndex(no, in.Detail.PaidTime, now)
		},
		applied: func(o *ledger.PayScoreOrder) bool { return o.State == ledger.PayScoreDone },
	})
}
