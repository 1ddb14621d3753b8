package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/secrets"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// CreateRefundRequest is the body of POST /payments/refunds. Exactly one of
// OutTradeNo (a payment order), TransactionID (a payment order or a Pay
// Score deduction the ledger knows by that id) and OutOrderNo (a Pay Score
// service order, refunded through its transaction_id) names what is refunded.
type CreateRefundRequest struct {
	OutRefundNo   string `json:"out_refund_no"`
	OutTradeNo    string `json:"out_trade_no,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	OutOrderNo    string `json:"out_order_no,omitempty"`
	// Refund is in order (标价) terms, fen: WeChat Pay gives the user back
	// refund × payer_total / total and the coupons the rest.
	Refund       int64  `json:"refund"`
	Reason       string `json:"reason,omitempty"`
	FundsAccount string `json:"funds_account,omitempty"` // AVAILABLE or UNSETTLED
}

func (r *CreateRefundRequest) validate() error {
	bad := func(format string, args ...any) error {
		return apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, format, args...)
	}
	n := 0
	for _, v := range []string{r.OutTradeNo, r.TransactionID, r.OutOrderNo} {
		if v != "" {
			n++
		}
	}
	switch {
	case n != 1:
		return bad("give exactly one of out_trade_no, transaction_id and out_order_no")
	case !validNo(r.OutRefundNo, 1, 64, "_-|*@"):
		return bad("out_refund_no must be 1-64 characters of [0-9A-Za-z_-|*@]")
	case r.OutTradeNo != "" && !validNo(r.OutTradeNo, 6, 32, "_-|*"):
		return bad("out_trade_no must be 6-32 characters of [0-9A-Za-z_-|*]")
	case r.OutOrderNo != "" && !validNo(r.OutOrderNo, 6, 32, "_-|*"):
		return bad("out_order_no must be 6-32 characters of [0-9A-Za-z_-|*]")
	case r.TransactionID != "" && !validNo(r.TransactionID, 1, 32, ""):
		return bad("transaction_id must be 1-32 characters of [0-9A-Za-z]")
	case r.Refund <= 0:
		return bad("refund must be a positive number of fen, got %d", r.Refund)
	case utf8.RuneCountInString(r.Reason) > 80:
		return bad("reason must be at most 80 characters")
	case r.FundsAccount != "" && r.FundsAccount != "AVAILABLE" && r.FundsAccount != "UNSETTLED":
		return bad("funds_account must be AVAILABLE or UNSETTLED, got %q", r.FundsAccount)
	}
	return nil
}

// refundTarget is the paid transaction a refund applies to.
type refundTarget struct {
	kind, no      string
	key           store.Key // the order row (payment or Pay Score order)
	transactionID string
	outTradeNo    string // WeChat Pay's out_trade_no, when known
	basis         ledger.RefundBasis
}

func orderKeyOf(kind, no string) store.Key {
	if kind == ledger.KindPayScoreOrder {
		return ledger.PayScoreOrderKey(no)
	}
	return ledger.OrderKey(no)
}

// paidOrder checks that a payment order can be refunded.
func paidOrder(o *ledger.PaymentOrder) (*refundTarget, error) {
	switch o.Status {
	case ledger.TradeSuccess, ledger.TradeRefund:
	case ledger.TradeClosed, ledger.TradeRevoked:
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderClosed, "order %s is %s; only paid orders are refunded", o.OutTradeNo, o.Status)
	default:
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderNotPaid, "order %s is %s; only paid orders are refunded", o.OutTradeNo, o.Status)
	}
	if o.TransactionID == "" {
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderNotPaid, "order %s has no transaction_id yet", o.OutTradeNo)
	}
	return &refundTarget{kind: ledger.KindOrder, no: o.OutTradeNo, key: ledger.OrderKey(o.OutTradeNo), transactionID: o.TransactionID,
		outTradeNo: o.OutTradeNo, basis: ledger.RefundBasis{Total: o.Total, PayerTotal: o.PayerTotal, Promotions: o.Promotions}}, nil
}

// payScoreRow is the part of a Pay Score order row (written by the notify
// function on PAYSCORE.USER_PAID) a refund needs.
type payScoreRow struct {
	OutOrderNo     string `dynamodbav:"out_order_no"`
	State          string `dynamodbav:"state"`
	TransactionID  string `dynamodbav:"transaction_id"`
	PaidAmount     int64  `dynamodbav:"paid_amount"`
	TotalAmount    int64  `dynamodbav:"total_amount"`
	CollectionJSON string `dynamodbav:"collection_json"`
}

// payScoreOrder loads a paid Pay Score order. The refund basis is the
// collection detail its transaction_id paid (amount and promotion_detail);
// without one, the paid amount with no coupons.
func (h *Handler) payScoreOrder(ctx context.Context, outOrderNo string) (*refundTarget, error) {
	var ps payScoreRow
	err := h.deps.Store.Get(ctx, ledger.PayScoreOrderKey(outOrderNo), &ps)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &apigw.Error{Status: http.StatusNotFound, Code: apigw.CodeNotFound, Message: fmt.Sprintf("Pay Score order %s not found", outOrderNo), Err: err}
	}
	if err != nil {
		return nil, err
	}
	if ps.State != "DONE" || ps.TransactionID == "" {
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderNotPaid, "Pay Score order %s is %s and not paid; only paid orders are refunded", outOrderNo, ps.State)
	}
	t := &refundTarget{kind: ledger.KindPayScoreOrder, no: outOrderNo, key: ledger.PayScoreOrderKey(outOrderNo), transactionID: ps.TransactionID}
	total := ps.PaidAmount
	if total == 0 {
		total = ps.TotalAmount
	}
	t.basis = ledger.RefundBasis{Total: total, PayerTotal: total}
	if ps.CollectionJSON != "" {
		var c struct {
			Details []struct {
				Amount          int64              `json:"amount"`
				TransactionID   string             `json:"transaction_id"`
				PromotionDetail []ledger.Promotion `json:"promotion_detail"`
			} `json:"details"`
		}
		if err := json.Unmarshal([]byte(ps.CollectionJSON), &c); err != nil {
			return nil, fmt.Errorf("payments: Pay Score order %s collection: %w", outOrderNo, err)
		}
		for _, d := range c.Details {
			if d.TransactionID != ps.TransactionID {
				continue
			}
			// UNCONFIRMED: detail.amount is taken as the transaction's
			// total, promotions included.
			var coupons int64
			for i := range d.PromotionDetail {
				d.PromotionDetail[i].Type = ledger.NormalizeCouponType(d.PromotionDetail[i].Type)
				coupons += d.PromotionDetail[i].Amount
			}
			t.basis = ledger.RefundBasis{Total: d.Amount, PayerTotal: d.Amount - coupons, Promotions: d.PromotionDetail}
		}
	}
	if t.basis.Total <= 0 {
		return nil, apigw.Errorf(http.StatusConflict, CodeOrderAmounts, "Pay Score order %s has no paid amount", outOrderNo)
	}
	return t, nil
}

// resolveTarget finds what the request refunds. A transaction_id the ledger
// has no pointer for (payments recorded by notification) is looked up at
// WeChat Pay by id and must lead to a payment order of the ledger.
func (h *Handler) resolveTarget(ctx context.Context, wc *wxpay.Client, creds *secrets.Credentials, in *CreateRefundRequest) (*refundTarget, error) {
	switch {
	case in.OutTradeNo != "":
		o, err := h.loadOrder(ctx, in.OutTradeNo)
		if err != nil {
			return nil, err
		}
		return paidOrder(o)
	case in.OutOrderNo != "":
		return h.payScoreOrder(ctx, in.OutOrderNo)
	}
	var p ledger.TxnPointer
	err := h.deps.Store.Get(ctx, ledger.TxnKey(in.TransactionID), &p)
	switch {
	case err == nil && p.Kind == ledger.KindPayScoreOrder:
		return h.payScoreOrder(ctx, p.No)
	case err == nil:
		o, err := h.loadOrder(ctx, p.No)
		if err != nil {
			return nil, err
		}
		return paidOrder(o)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if _, err := h.client(); err != nil {
		return nil, err
	}
	var t struct {
		OutTradeNo string `json:"out_trade_no"`
	}
	_, err = wc.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/id/" + url.PathEscape(in.TransactionID),
		Query: url.Values{"mchid": {creds.MchID}}}, &t)
	if wxpay.IsNotFound(err) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "transaction %s not found", in.TransactionID)
	}
	if err != nil {
		return nil, upstream("looking up the transaction", err)
	}
	var o ledger.PaymentOrder
	err = h.deps.Store.Get(ctx, ledger.OrderKey(t.OutTradeNo), &o)
	if errors.Is(err, store.ErrNotFound) || err == nil && o.TransactionID != in.TransactionID {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound,
			"transaction %s is not an order of this ledger (refund a Pay Score deduction by out_order_no)", in.TransactionID)
	}
	if err != nil {
		return nil, err
	}
	return paidOrder(&o)
}

// refundBook reads an order's refund book and its refund rows.
func (h *Handler) refundBook(ctx context.Context, orderKey store.Key) (ledger.RefundBook, []ledger.RefundRecord, error) {
	var book ledger.RefundBook
	err := h.deps.Store.Get(ctx, ledger.RefundsKey(orderKey), &book)
	if errors.Is(err, store.ErrNotFound) {
		return book, nil, nil
	}
	if err != nil {
		return book, nil, err
	}
	rows := make([]ledger.RefundRecord, 0, len(book.RefundNos))
	for _, no := range book.RefundNos {
		var r ledger.RefundRecord
		err := h.deps.Store.Get(ctx, ledger.RefundKey(no), &r)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return book, nil, err
		}
		rows = append(rows, r)
	}
	return book, rows, nil
}

// createRefund is POST /payments/refunds: local rules (paid order, refund
// within what is left, out_refund_no bound to its request), the prediction,
// the refund row written as PROCESSING together with the order's refund
// book, then WeChat Pay. The same request again answers the stored refund
// (resubmitting it if WeChat Pay's answer never arrived).
func (h *Handler) createRefund(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in CreateRefundRequest
	if err := apigw.DecodeJSON(req.Body, &in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	creds, err := h.merchant(ctx)
	if err != nil {
		return nil, err
	}
	wc := h.deps.WeChat // checked where it is needed: rules that need no WeChat Pay answer first
	sum, err := digest(in)
	if err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 4; attempt++ {
		var existing ledger.RefundRecord
		err := h.deps.Store.Get(ctx, ledger.RefundKey(in.OutRefundNo), &existing)
		if err == nil {
			return h.replayRefund(ctx, req, wc, &existing, sum)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		t, err := h.resolveTarget(ctx, wc, creds, &in)
		if err != nil {
			return nil, err
		}
		row, ops, err := h.planRefund(ctx, &in, t, sum)
		if err != nil {
			return nil, err
		}
		if _, err := h.client(); err != nil {
			return nil, err // nothing is written that could not be submitted
		}
		err = h.deps.Store.Transact(ctx, ops...)
		var tx *store.TxError
		switch {
		case err == nil:
			return h.submitRefund(ctx, req, wc, row)
		case errors.As(err, &tx) && errors.Is(tx.Reasons[0], store.ErrDuplicate):
			continue // the same out_refund_no raced us: answer as a replay
		case errors.As(err, &tx) && errors.Is(tx.Reasons[1], store.ErrConflict):
			continue // another refund of the order raced us: recompute
		case errors.As(err, &tx) && len(tx.Reasons) > 3 && tx.Reasons[3] != nil && !errors.Is(tx.Reasons[3], store.ErrContention):
			return nil, apigw.Errorf(http.StatusConflict, CodeOrderState, "order %s changed state; it can no longer be refunded", t.no)
		case errors.Is(err, store.ErrContention):
			continue
		default:
			return nil, err
		}
	}
	return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeTryAgain, "concurrent refunds of the order; retry the same request")
}

// planRefund applies the local rules and builds the writes of a new refund:
// the refund row (PROCESSING, with the prediction), the order's refund book
// guarded by its sequence, the transaction_id pointer and, for payment
// orders, the order's mirror of the refunded total guarded by its state.
func (h *Handler) planRefund(ctx context.Context, in *CreateRefundRequest, t *refundTarget, sum string) (*ledger.RefundRecord, []store.Op, error) {
	book, rows, err := h.refundBook(ctx, t.key)
	if err != nil {
		return nil, nil, err
	}
	var prior ledger.Refunded
	for i := range rows {
		if ledger.RefundCounts(rows[i].Status) {
			prior.Add(rows[i].Taken())
		}
	}
	if len(book.RefundNos) >= maxRefundsPerOrder {
		return nil, nil, apigw.Errorf(http.StatusBadRequest, CodeTooManyRefunds, "order %s already has %d refunds, the most WeChat Pay allows", t.no, len(book.RefundNos))
	}
	split, err := ledger.SplitRefund(t.basis, in.Refund, prior)
	switch {
	case errors.Is(err, ledger.ErrRefundExceeds):
		return nil, nil, apigw.Errorf(http.StatusBadRequest, CodeRefundExceeds,
			"refund %d exceeds what is left of order %s: total %d, already refunded or in progress %d, refundable %d",
			in.Refund, t.no, t.basis.Total, prior.Refund, t.basis.Total-prior.Refund)
	case errors.Is(err, ledger.ErrOrderAmounts):
		return nil, nil, &apigw.Error{Status: http.StatusConflict, Code: CodeOrderAmounts,
			Message: fmt.Sprintf("order %s amounts do not add up; no refund can be predicted", t.no), Err: err}
	case err != nil:
		return nil, nil, err
	}
	now := ledger.WechatTime(h.now())
	row := &ledger.RefundRecord{OutRefundNo: in.OutRefundNo, OutTradeNo: t.outTradeNo, OrderKind: t.kind, OrderNo: t.no,
		TransactionID: t.transactionID, Status: ledger.RefundProcessing, Refund: in.Refund, Total: t.basis.Total, PayerTotal: t.basis.PayerTotal,
		SettlementTotal:      split.SettlementTotal,
		PredictedPayerRefund: split.PayerRefund, PredictedDiscountRefund: split.DiscountRefund,
		PredictedSettlementRefund: split.SettlementRefund, PredictedSettlementTotal: split.SettlementTotal,
		PredictedPromotions: split.Promotions, Reason: in.Reason, FundsAccount: in.FundsAccount, CreatedAt: now, UpdatedAt: now,
		Source: "api", RequestDigest: sum}
	reserved := prior.Refund + in.Refund
	ops := []store.Op{
		&store.Put{Key: ledger.RefundKey(in.OutRefundNo), Value: row, IfNotExists: true,
			Index: store.IndexKey{PK: ledger.DayIndex("REFUND", ledger.Day(h.now())), SK: in.OutRefundNo}},
		&store.Update{Key: ledger.RefundsKey(t.key), AllowMissing: true, ExpectBefore: map[string]any{"seq": book.Seq + 1},
			Set: map[string]any{"order_kind": t.kind, "order_no": t.no, "transaction_id": t.transactionID, "seq": book.Seq + 1,
				"refund_nos": append(book.RefundNos, in.OutRefundNo), "reserved": reserved}},
		&store.Put{Key: ledger.TxnKey(t.transactionID), Value: ledger.TxnPointer{TransactionID: t.transactionID, Kind: t.kind, No: t.no}},
	}
	if t.kind == ledger.KindOrder {
		ops = append(ops, &store.Update{Key: t.key, Set: map[string]any{"refund_reserved": reserved, "updated_at": now},
			ExpectIn: map[string][]any{"status": {string(ledger.TradeSuccess), string(ledger.TradeRefund)}}})
	}
	return row, ops, nil
}

// replayRefund answers a request whose out_refund_no exists.
func (h *Handler) replayRefund(ctx context.Context, req *apigw.Request, wc *wxpay.Client, r *ledger.RefundRecord, sum string) (*apigw.Response, error) {
	if r.RequestDigest != sum {
		return nil, apigw.Errorf(http.StatusConflict, apigw.CodeConflict,
			"out_refund_no %s already exists (refund %d of %s); a refund number cannot be reused for another request", r.OutRefundNo, r.Refund, r.OrderNo)
	}
	switch {
	case r.Status == ledger.RefundRejected:
		code := r.RejectCode
		if code == "" {
			code = "REFUND_REJECTED"
		}
		return nil, apigw.Errorf(http.StatusBadRequest, code, "WeChat Pay rejected refund %s: %s", r.OutRefundNo, r.RejectMessage)
	case r.Status == ledger.RefundProcessing && !r.Submitted:
		if _, err := h.client(); err != nil {
			return nil, err
		}
		return h.submitRefund(ctx, req, wc, r)
	}
	return apigw.JSON(http.StatusOK, refundView(r)), nil
}

// wechatRefund is WeChat Pay's refund object (answer and query).
type wechatRefund struct {
	RefundID            string `json:"refund_id"`
	OutRefundNo         string `json:"out_refund_no"`
	TransactionID       string `json:"transaction_id"`
	OutTradeNo          string `json:"out_trade_no"`
	Channel             string `json:"channel"`
	UserReceivedAccount string `json:"user_received_account"`
	SuccessTime         string `json:"success_time"`
	CreateTime          string `json:"create_time"`
	Status              string `json:"status"`
	FundsAccount        string `json:"funds_account"`
	Amount              struct {
		Total            int64 `json:"total"`
		Refund           int64 `json:"refund"`
		PayerTotal       int64 `json:"payer_total"`
		PayerRefund      int64 `json:"payer_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
		SettlementTotal  int64 `json:"settlement_total"`
		DiscountRefund   int64 `json:"discount_refund"`
	} `json:"amount"`
	PromotionDetail []struct {
		PromotionID  string `json:"promotion_id"`
		Scope        string `json:"scope"`
		Type         string `json:"type"`
		Amount       int64  `json:"amount"`
		RefundAmount int64  `json:"refund_amount"`
	} `json:"promotion_detail"`
}

// split is WeChat Pay's split, promotion types normalised (COUPON/DISCOUNT
// become CASH/NOCASH).
func (w *wechatRefund) split() ledger.RefundSplit {
	s := ledger.RefundSplit{Refund: w.Amount.Refund, PayerRefund: w.Amount.PayerRefund, DiscountRefund: w.Amount.DiscountRefund,
		SettlementRefund: w.Amount.SettlementRefund, SettlementTotal: w.Amount.SettlementTotal, Total: w.Amount.Total, PayerTotal: w.Amount.PayerTotal}
	for _, p := range w.PromotionDetail {
		s.Promotions = append(s.Promotions, ledger.PromotionRefund{PromotionID: p.PromotionID, Scope: p.Scope,
			Type: ledger.NormalizeCouponType(p.Type), Amount: p.Amount, RefundAmount: p.RefundAmount})
	}
	return s
}

// submitRefund sends a stored PROCESSING refund to WeChat Pay. A rejection
// marks it REJECTED (nothing was refunded, its amount is free again); a
// failure of unknown outcome leaves it PROCESSING and unsubmitted so the same
// request resubmits it (WeChat Pay keys refunds by out_refund_no).
func (h *Handler) submitRefund(ctx context.Context, req *apigw.Request, wc *wxpay.Client, r *ledger.RefundRecord) (*apigw.Response, error) {
	body := map[string]any{"out_refund_no": r.OutRefundNo, "notify_url": h.deps.NotifyURL(req, "refunds"),
		"amount": map[string]any{"refund": r.Refund, "total": r.Total, "currency": "CNY"}}
	if r.OrderKind == ledger.KindOrder {
		body["out_trade_no"] = r.OrderNo
	} else {
		body["transaction_id"] = r.TransactionID // Pay Score refunds go by transaction_id (pitfalls P4)
	}
	if r.Reason != "" {
		body["reason"] = r.Reason
	}
	if r.FundsAccount != "" {
		body["funds_account"] = r.FundsAccount
	}
	var out wechatRefund
	_, err := wc.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: "/v3/refund/domestic/refunds", Body: body}, &out)
	if err != nil {
		if rejected(err) {
			h.rejectRefund(ctx, r, err)
		}
		return nil, upstream("refunding", err)
	}
	if err := h.applyRefund(ctx, r, &out, "answer"); err != nil {
		return nil, err
	}
	var stored ledger.RefundRecord
	if err := h.deps.Store.Get(ctx, ledger.RefundKey(r.OutRefundNo), &stored); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, refundView(&stored)), nil
}

// rejectRefund records WeChat Pay's refusal and frees the amount.
func (h *Handler) rejectRefund(ctx context.Context, r *ledger.RefundRecord, cause error) {
	var ae *wxpay.APIError
	errors.As(cause, &ae)
	now := ledger.WechatTime(h.now())
	orderKey := orderKeyOf(r.OrderKind, r.OrderNo)
	ops := []store.Op{
		&store.Update{Key: ledger.RefundKey(r.OutRefundNo), ExpectIn: map[string][]any{"status": {ledger.RefundProcessing}},
			Set: map[string]any{"status": ledger.RefundRejected, "reject_code": ae.Code, "reject_message": ae.Message, "updated_at": now}},
		&store.Update{Key: ledger.RefundsKey(orderKey), Add: map[string]int64{"reserved": -r.Refund}, MustExist: true},
	}
	if r.OrderKind == ledger.KindOrder {
		ops = append(ops, &store.Update{Key: orderKey, Add: map[string]int64{"refund_reserved": -r.Refund}, MustExist: true})
	}
	if err := h.deps.Store.Transact(ctx, ops...); err != nil {
		h.deps.Logger().ErrorContext(ctx, "rejected refund not recorded", "out_refund_no", r.OutRefundNo, "error", err)
	}
}

// applyRefund stores what WeChat Pay said about a refund (its answer or a
// query): its split and ids, its status unless a notification already moved
// the row on, and the differences from the prediction, recorded for
// reconciliation. A payment order with a refund is in state REFUND.
func (h *Handler) applyRefund(ctx context.Context, r *ledger.RefundRecord, w *wechatRefund, source string) error {
	now := h.now()
	actual := w.split()
	diffs := ledger.RefundDifferences(r.Predicted(), actual)
	set := map[string]any{"submitted": true, "refund_id": w.RefundID, "channel": w.Channel, "user_received_account": w.UserReceivedAccount,
		"create_time": w.CreateTime, "payer_refund": actual.PayerRefund, "discount_refund": actual.DiscountRefund,
		"settlement_refund": actual.SettlementRefund, "settlement_total": actual.SettlementTotal, "updated_at": ledger.WechatTime(now)}
	if w.TransactionID != "" {
		set["transaction_id"] = w.TransactionID
	}
	if w.OutTradeNo != "" {
		set["out_trade_no"] = w.OutTradeNo
	}
	if w.FundsAccount != "" {
		set["funds_account"] = w.FundsAccount
	}
	if len(actual.Promotions) > 0 {
		set["promotion_refunds"] = actual.Promotions
	}
	if diffs != nil {
		set["prediction_diff"] = diffs
	}
	withStatus := map[string]any{"status": w.Status}
	for k, v := range set {
		withStatus[k] = v
	}
	if w.SuccessTime != "" {
		withStatus["success_time"] = w.SuccessTime
	}
	key := ledger.RefundKey(r.OutRefundNo)
	var err error
	if ev, from, ok := refundEvent(r, w, now); ok {
		// The refund's result (REFUND.SUCCESS / CLOSED / ABNORMAL) is
		// applied once whichever way the ledger learns of it: the
		// notification's guard and application counter, and its domain
		// event through the outbox, so downstream consumers hear of a
		// refund whose notification never came.
		err = h.deps.Store.Transact(ctx,
			&store.Update{Key: key, Set: withStatus, Add: map[string]int64{ledger.AppliedAttr(ev.DetailType): 1},
				ExpectIn: map[string][]any{"status": from}},
			domainevent.OutboxPut(ev, now))
		if err == nil {
			if perr := domainevent.Flush(ctx, h.deps.Store, h.deps.Events, ev); perr != nil {
				h.deps.Logger().WarnContext(ctx, "domain event left in the outbox", "id", ev.ID, "error", perr)
			}
		}
	} else {
		err = h.deps.Store.Update(ctx, &store.Update{Key: key, Set: withStatus, ExpectIn: map[string][]any{"status": statusesBefore(w.Status)}})
	}
	if errors.Is(err, store.ErrConflict) {
		// A notification moved the status on already: keep it, add the rest.
		err = h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, MustExist: true})
	}
	if err != nil {
		return err
	}
	if diffs != nil {
		h.recordDifference(ctx, r, diffs, source)
	}
	if r.OrderKind == ledger.KindOrder && ledger.RefundCounts(w.Status) {
		err := h.deps.Store.Update(ctx, &store.Update{Key: ledger.OrderKey(r.OrderNo),
			Set:      map[string]any{"status": string(ledger.TradeRefund), "updated_at": ledger.WechatTime(now)},
			ExpectIn: map[string][]any{"status": {string(ledger.TradeSuccess), string(ledger.TradeRefund)}}})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// refundEvent is the domain event of a refund result a query found before
// its notification: REFUND.SUCCESS, REFUND.CLOSED or REFUND.ABNORMAL when the
// stored status differs, with the statuses the notification's guard allows
// before it. ok is false when the query changes no status.
func refundEvent(r *ledger.RefundRecord, w *wechatRefund, now time.Time) (ev domainevent.Event, from []any, ok bool) {
	switch w.Status {
	case ledger.RefundSuccess, ledger.RefundClosed:
		from = []any{ledger.RefundProcessing, ledger.RefundAbnormal}
	case ledger.RefundAbnormal:
		from = []any{ledger.RefundProcessing}
	default:
		return ev, nil, false
	}
	if r.Status == w.Status {
		return ev, nil, false
	}
	eventType := "REFUND." + w.Status
	detail, err := json.Marshal(map[string]any{"source": "query", "event_type": eventType, "channel": "refunds",
		"ledger": map[string]any{"out_refund_no": r.OutRefundNo, "out_trade_no": w.OutTradeNo, "status": w.Status, "refund": w.Amount.Refund}})
	if err != nil {
		return ev, nil, false
	}
	return domainevent.Event{ID: "query:" + w.RefundID + ":" + w.Status, DetailType: eventType, Detail: detail, CreatedAt: ledger.WechatTime(now)}, from, true
}

// statusesBefore lists the statuses a refund may be in before moving to
// status (the notify function's guard, plus staying put).
func statusesBefore(status string) []any {
	switch status {
	case ledger.RefundProcessing:
		return []any{ledger.RefundProcessing}
	case ledger.RefundAbnormal:
		return []any{ledger.RefundProcessing, ledger.RefundAbnormal}
	}
	return []any{ledger.RefundProcessing, ledger.RefundAbnormal, status}
}

// recordDifference writes the reconciliation record of a refund whose
// WeChat Pay split differs from the prediction (once per refund).
func (h *Handler) recordDifference(ctx context.Context, r *ledger.RefundRecord, diffs []string, source string) {
	now := ledger.WechatTime(h.now())
	err := h.deps.Store.Put(ctx, &store.Put{Key: ledger.RefundDiffKey(r.OutRefundNo), IfNotExists: true,
		Index: store.IndexKey{PK: ledger.RefundDiffIndex, SK: now + "#" + r.OutRefundNo},
		Value: map[string]any{"out_refund_no": r.OutRefundNo, "order_kind": r.OrderKind, "order_no": r.OrderNo, "differences": diffs,
			"source": source, "detected_at": now}})
	if err != nil && !errors.Is(err, store.ErrDuplicate) {
		h.deps.Logger().ErrorContext(ctx, "refund difference not recorded", "out_refund_no", r.OutRefundNo, "error", err)
		return
	}
	if err == nil {
		h.deps.Logger().WarnContext(ctx, "refund split differs from the prediction", "out_refund_no", r.OutRefundNo, "source", source,
			"differences", diffs)
		h.deps.Metrics.Count("RefundPredictionDifferences", 1, map[string]string{"Function": "payments"})
	}
}

// getRefund is GET /payments/refunds/{out_refund_no}: the stored refund with
// its prediction checked against WeChat Pay's figures (a difference found
// here, e.g. brought by REFUND.SUCCESS, is recorded too); ?live=true
// queries WeChat Pay and applies what it reports.
func (h *Handler) getRefund(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	no, err := pathNo(req, "out_refund_no", 1, 64, "_-|*@")
	if err != nil {
		return nil, err
	}
	live, err := liveFlag(req)
	if err != nil {
		return nil, err
	}
	r, err := h.loadRefund(ctx, no)
	if err != nil {
		return nil, err
	}
	var lv *LiveRefund
	if live {
		_, wc, err := h.credentials(ctx)
		if err != nil {
			return nil, err
		}
		var w wechatRefund
		_, err = wc.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/refund/domestic/refunds/" + url.PathEscape(no)}, &w)
		var ae *wxpay.APIError
		switch {
		case wxpay.IsNotFound(err) && errors.As(err, &ae):
			lv = &LiveRefund{ErrorCode: ae.Code}
		case err != nil:
			return nil, upstream("querying the refund", err)
		case r.Status == ledger.RefundRejected:
			lv = &LiveRefund{Status: w.Status} // not ours to revive
		default:
			if err := h.applyRefund(ctx, r, &w, "query"); err != nil {
				return nil, err
			}
			lv = &LiveRefund{Status: w.Status, Applied: true}
			if r, err = h.loadRefund(ctx, no); err != nil {
				return nil, err
			}
		}
	}
	if d := r.Differences(); d != nil && len(r.PredictionDiff) == 0 {
		h.recordDifference(ctx, r, d, "stored")
	}
	v := refundView(r)
	v.Live = lv
	return apigw.JSON(http.StatusOK, v), nil
}

func (h *Handler) loadRefund(ctx context.Context, no string) (*ledger.RefundRecord, error) {
	var r ledger.RefundRecord
	err := h.deps.Store.Get(ctx, ledger.RefundKey(no), &r)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &apigw.Error{Status: http.StatusNotFound, Code: apigw.CodeNotFound, Message: fmt.Sprintf("refund %s not found", no), Err: err}
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// RefundView is the answer of the refund routes.
type RefundView struct {
	OutRefundNo         string `json:"out_refund_no"`
	OutTradeNo          string `json:"out_trade_no,omitempty"`
	OutOrderNo          string `json:"out_order_no,omitempty"` // Pay Score refunds
	TransactionID       string `json:"transaction_id,omitempty"`
	RefundID            string `json:"refund_id,omitempty"`
	Status              string `json:"status"`
	Reason              string `json:"reason,omitempty"`
	FundsAccount        string `json:"funds_account,omitempty"`
	Channel             string `json:"channel,omitempty"`
	UserReceivedAccount string `json:"user_received_account,omitempty"`
	CreateTime          string `json:"create_time,omitempty"`
	SuccessTime         string `json:"success_time,omitempty"`
	CreatedAt           string `json:"created_at,omitempty"`
	UpdatedAt           string `json:"updated_at,omitempty"`
	// Amount is WeChat Pay's split (zero until it answered or notified).
	Amount struct {
		Refund           int64  `json:"refund"`
		Total            int64  `json:"total"`
		PayerTotal       int64  `json:"payer_total"`
		PayerRefund      int64  `json:"payer_refund"`
		DiscountRefund   int64  `json:"discount_refund"`
		SettlementRefund int64  `json:"settlement_refund"`
		SettlementTotal  int64  `json:"settlement_total"`
		Currency         string `json:"currency"`
	} `json:"amount"`
	PromotionDetail []ledger.PromotionRefund `json:"promotion_detail"`
	Prediction      RefundPrediction         `json:"prediction"`
	RejectCode      string                   `json:"reject_code,omitempty"`
	RejectMessage   string                   `json:"reject_message,omitempty"`
	Live            *LiveRefund              `json:"live,omitempty"`
}

// RefundPrediction is the split predicted before WeChat Pay was asked, and
// whether WeChat Pay's figures (once known: Checked) agree.
type RefundPrediction struct {
	PayerRefund      int64                    `json:"payer_refund"`
	DiscountRefund   int64                    `json:"discount_refund"`
	SettlementRefund int64                    `json:"settlement_refund"`
	SettlementTotal  int64                    `json:"settlement_total"`
	PromotionDetail  []ledger.PromotionRefund `json:"promotion_detail"`
	Checked          bool                     `json:"checked"`
	Matches          bool                     `json:"matches"`
	Differences      []string                 `json:"differences,omitempty"`
}

// LiveRefund is what WeChat Pay reported on ?live=true.
type LiveRefund struct {
	Status    string `json:"status,omitempty"`
	ErrorCode string `json:"error_code,omitempty"`
	Applied   bool   `json:"applied"`
}

func refundView(r *ledger.RefundRecord) *RefundView {
	v := &RefundView{OutRefundNo: r.OutRefundNo, OutTradeNo: r.OutTradeNo, TransactionID: r.TransactionID, RefundID: r.RefundID,
		Status: r.Status, Reason: r.Reason, FundsAccount: r.FundsAccount, Channel: r.Channel, UserReceivedAccount: r.UserReceivedAccount,
		CreateTime: r.CreateTime, SuccessTime: r.SuccessTime, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		PromotionDetail: r.PromotionRefunds, RejectCode: r.RejectCode, RejectMessage: r.RejectMessage}
	if r.OrderKind == ledger.KindPayScoreOrder {
		v.OutOrderNo = r.OrderNo
	}
	a := r.Actual()
	if !r.Submitted && r.RefundID != "" {
		a.DiscountRefund = a.Refund - a.PayerRefund // REFUND.* carries no discount_refund
	}
	v.Amount.Refund, v.Amount.Total, v.Amount.PayerTotal = a.Refund, a.Total, a.PayerTotal
	v.Amount.PayerRefund, v.Amount.DiscountRefund, v.Amount.SettlementRefund, v.Amount.SettlementTotal, v.Amount.Currency =
		a.PayerRefund, a.DiscountRefund, a.SettlementRefund, a.SettlementTotal, "CNY"
	if v.PromotionDetail == nil {
		v.PromotionDetail = []ledger.PromotionRefund{}
	}
	p := r.Predicted()
	v.Prediction = RefundPrediction{PayerRefund: p.PayerRefund, DiscountRefund: p.DiscountRefund, SettlementRefund: p.SettlementRefund,
		SettlementTotal: p.SettlementTotal, PromotionDetail: p.Promotions}
	if v.Prediction.PromotionDetail == nil {
		v.Prediction.PromotionDetail = []ledger.PromotionRefund{}
	}
	if r.RequestDigest != "" && r.RefundID != "" {
		v.Prediction.Checked = true
		v.Prediction.Differences = r.Differences()
		v.Prediction.Matches = v.Prediction.Differences == nil
	}
	return v
}

// RefundSummary is an order's refunds as the order routes show them.
type RefundSummary struct {
	// State is NONE, PROCESSING (a refund is not settled yet), PARTIAL or
	// FULL (refunds that succeeded cover the total).
	State         string       `json:"state"`
	Refundable    int64        `json:"refundable"`     // total - requested
	Requested     int64        `json:"requested"`      // refunds not closed or rejected
	Succeeded     int64        `json:"succeeded"`      // refunds that succeeded
	PayerRefunded int64        `json:"payer_refunded"` // cash back to the user so far
	Processing    int64        `json:"processing"`     // PROCESSING and ABNORMAL refunds
	Items         []RefundItem `json:"items"`
}

// RefundItem is one refund of an order.
type RefundItem struct {
	OutRefundNo string `json:"out_refund_no"`
	Status      string `json:"status"`
	Refund      int64  `json:"refund"`
	PayerRefund int64  `json:"payer_refund"`
}

// refundSummary derives the order's refund state from its refund rows, which
// the notify function keeps current.
func (h *Handler) refundSummary(ctx context.Context, orderKey store.Key, total int64) (*RefundSummary, error) {
	_, rows, err := h.refundBook(ctx, orderKey)
	if err != nil {
		return nil, err
	}
	s := &RefundSummary{State: "NONE", Items: []RefundItem{}}
	for _, r := range rows {
		s.Items = append(s.Items, RefundItem{OutRefundNo: r.OutRefundNo, Status: r.Status, Refund: r.Refund, PayerRefund: r.PayerRefund})
		if !ledger.RefundCounts(r.Status) {
			continue
		}
		s.Requested += r.Refund
		switch r.Status {
		case ledger.RefundSuccess:
			s.Succeeded += r.Refund
			s.PayerRefunded += r.PayerRefund
		default:
			s.Processing += r.Refund
		}
	}
	s.Refundable = total - s.Requested
	switch {
	case s.Processing > 0:
		s.State = "PROCESSING"
	case s.Succeeded > 0 && s.Succeeded >= total:
		s.State = "FULL"
	case s.Succeeded > 0:
		s.State = "PARTIAL"
	}
	return s, nil
}
