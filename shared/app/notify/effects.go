package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxnotify"
)

// Event types with domain effects, and the channel each belongs to.
const (
	EventTransactionSuccess = ledger.EventPaymentSuccess
	EventRefundSuccess      = "REFUND.SUCCESS"
	EventRefundAbnormal     = "REFUND.ABNORMAL"
	EventRefundClosed       = "REFUND.CLOSED"
	EventPayScoreOpen       = "PAYSCORE.USER_OPEN_SERVICE"
	EventPayScoreClose      = "PAYSCORE.USER_CLOSE_SERVICE"
	EventPayScorePaid       = ledger.EventPayScorePaid
	EventPayScoreConfirm    = "PAYSCORE.USER_CONFIRM"
	EventCouponSend         = "COUPON.SEND"
)

// ChannelOf names the channel (notify_url) an event type is delivered to.
func ChannelOf(eventType string) string {
	switch eventType {
	case EventTransactionSuccess:
		return "payments"
	case EventRefundSuccess, EventRefundAbnormal, EventRefundClosed:
		return "refunds"
	case EventPayScoreOpen, EventPayScoreClose, EventPayScorePaid, EventPayScoreConfirm:
		return "payscore"
	case EventCouponSend:
		return "coupons"
	}
	return ""
}

// errPayload: the decrypted resource lacks what its event type needs.
var errPayload = errors.New("notify: resource payload invalid")

// effect is what one notification does to the ledger.
type effect struct {
	businessKey string
	op          store.Op // the guarded domain change
	// superseded lists states in which the change has already happened or
	// been overtaken: a conflict there is a no-op, anything else an anomaly.
	superseded []string
	stateAttr  string
	summary    map[string]any // detail of the domain event
}

// RefundPayload is the decrypted REFUND.* resource.
type RefundPayload struct {
	MchID               string `json:"mchid"`
	OutTradeNo          string `json:"out_trade_no"`
	TransactionID       string `json:"transaction_id"`
	OutRefundNo         string `json:"out_refund_no"`
	RefundID            string `json:"refund_id"`
	RefundStatus        string `json:"refund_status"`
	SuccessTime         string `json:"success_time"`
	UserReceivedAccount string `json:"user_received_account"`
	Amount              struct {
		Total            int64 `json:"total"`
		Refund           int64 `json:"refund"`
		PayerTotal       int64 `json:"payer_total"`
		PayerRefund      int64 `json:"payer_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
		SettlementTotal  int64 `json:"settlement_total"`
		DiscountRefund   int64 `json:"discount_refund"`
	} `json:"amount"`
}

// AuthorizationPayload is the decrypted PAYSCORE.USER_OPEN/CLOSE_SERVICE resource.
type AuthorizationPayload struct {
	AppID             string `json:"appid"`
	MchID             string `json:"mchid"`
	ServiceID         string `json:"service_id"`
	OpenID            string `json:"openid"`
	UserServiceStatus string `json:"user_service_status"`
	OpenOrCloseTime   string `json:"openorclose_time"`
	AuthorizationCode string `json:"authorization_code"`
}

// PayScorePaidPayload is the decrypted PAYSCORE.USER_PAID / USER_CONFIRM resource.
type PayScorePaidPayload struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	ServiceID   string `json:"service_id"`
	OutOrderNo  string `json:"out_order_no"`
	OrderID     string `json:"order_id"`
	OpenID      string `json:"openid"`
	State       string `json:"state"`
	TotalAmount int64  `json:"total_amount"`
	Collection  struct {
		State       string `json:"state"`
		TotalAmount int64  `json:"total_amount"`
		PayingAmt   int64  `json:"paying_amount"`
		PaidAmount  int64  `json:"paid_amount"`
		Details     []struct {
			Seq             int64              `json:"seq"`
			Amount          int64              `json:"amount"`
			PaidType        string             `json:"paid_type"`
			PaidTime        string             `json:"paid_time"`
			TransactionID   string             `json:"transaction_id"`
			PromotionDetail []ledger.Promotion `json:"promotion_detail"`
		} `json:"details"`
	} `json:"collection"`
}

// CouponSendPayload is the decrypted COUPON.SEND (busifavor) resource.
type CouponSendPayload struct {
	EventType    string          `json:"event_type"`
	CouponCode   string          `json:"coupon_code"`
	StockID      string          `json:"stock_id"`
	SendTime     string          `json:"send_time"`
	OpenID       string          `json:"openid"`
	UnionID      string          `json:"unionid"`
	SendChannel  string          `json:"send_channel"`
	SendMerchant string          `json:"send_merchant"`
	ActID        string          `json:"act_id"`
	AttachInfo   json.RawMessage `json:"attach_info"`
}

func required(fields map[string]string) error {
	for name, v := range fields {
		if v == "" {
			return fmt.Errorf("%w: %s is required", errPayload, name)
		}
	}
	return nil
}

// decide maps a verified notification to its ledger effect. Every effect
// also counts itself on the row (applied_<event type>): an audit trail of
// how many notifications changed it, which the soak test checks is never
// more than one per event type.
func decide(eventType string, plain []byte, now time.Time) (*effect, error) {
	eff, err := decideEffect(eventType, plain, now)
	if err != nil {
		return nil, err
	}
	if u, ok := eff.op.(*store.Update); ok {
		if u.Add == nil {
			u.Add = map[string]int64{}
		}
		u.Add[AppliedAttr(eventType)] = 1
	}
	return eff, nil
}

// AppliedAttr names the per-event-type application counter of a ledger row
// (ledger.AppliedAttr).
func AppliedAttr(eventType string) string { return ledger.AppliedAttr(eventType) }

func decideEffect(eventType string, plain []byte, now time.Time) (*effect, error) {
	stamp := ledger.WechatTime(now)
	switch eventType {
	case EventTransactionSuccess:
		p, err := wxnotify.DecodeTransaction(plain)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		if err := required(map[string]string{"out_trade_no": p.OutTradeNo, "transaction_id": p.TransactionID, "success_time": p.SuccessTime}); err != nil {
			return nil, err
		}
		if p.Amount.Total <= 0 || p.Amount.PayerTotal < 0 || p.Amount.PayerTotal > p.Amount.Total {
			return nil, fmt.Errorf("%w: amount total %d / payer_total %d", errPayload, p.Amount.Total, p.Amount.PayerTotal)
		}
		paid, err := time.Parse(time.RFC3339, p.SuccessTime)
		if err != nil {
			return nil, fmt.Errorf("%w: success_time: %w", errPayload, err)
		}
		promos := make([]ledger.Promotion, len(p.PromotionDetail))
		for i, pr := range p.PromotionDetail {
			promos[i] = ledger.Promotion(pr)
			promos[i].Type = ledger.NormalizeCouponType(pr.Type)
		}
		coupon, noCash, settlement := ledger.Settlement(p.Amount.Total, promos)
		set := map[string]any{
			"out_trade_no": p.OutTradeNo, "status": string(ledger.TradeSuccess), "transaction_id": p.TransactionID,
			"appid": p.AppID, "mchid": p.MchID, "trade_type": p.TradeType, "total": p.Amount.Total, "payer_total": p.Amount.PayerTotal,
			"currency": p.Amount.Currency, "coupon_total": coupon, "nocash_total": noCash, "settlement_total": settlement,
			"success_time": p.SuccessTime, "bank_type": p.BankType, "payer_openid": p.Payer.OpenID, "updated_at": stamp,
			"paid_day": ledger.Day(paid),
		}
		if len(promos) > 0 {
			set["promotions"] = promos
		}
		return &effect{
			businessKey: p.OutTradeNo,
			op: &store.Update{Key: ledger.OrderKey(p.OutTradeNo), Set: set, AllowMissing: true,
				ExpectIn: map[string][]any{"status": {string(ledger.TradeNotPay), string(ledger.TradeUserPaying), string(ledger.TradePayError)}},
				Index:    &store.IndexKey{PK: ledger.DayIndex("PAY", ledger.Day(paid)), SK: p.OutTradeNo}},
			superseded: []string{string(ledger.TradeSuccess), string(ledger.TradeRefund)},
			stateAttr:  "status",
			summary: map[string]any{"out_trade_no": p.OutTradeNo, "transaction_id": p.TransactionID, "total": p.Amount.Total,
				"payer_total": p.Amount.PayerTotal, "settlement_total": settlement},
		}, nil

	case EventRefundSuccess, EventRefundAbnormal, EventRefundClosed:
		var p RefundPayload
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		if err := required(map[string]string{"out_refund_no": p.OutRefundNo, "out_trade_no": p.OutTradeNo, "refund_status": p.RefundStatus}); err != nil {
			return nil, err
		}
		want := map[string]string{EventRefundSuccess: "SUCCESS", EventRefundAbnormal: "ABNORMAL", EventRefundClosed: "CLOSED"}[eventType]
		if p.RefundStatus != want {
			return nil, fmt.Errorf("%w: refund_status %s does not match %s", errPayload, p.RefundStatus, eventType)
		}
		from := []any{"PROCESSING"}
		if want != "ABNORMAL" {
			from = append(from, "ABNORMAL") // an abnormal refund can still be resolved
		}
		set := map[string]any{
			"out_refund_no": p.OutRefundNo, "out_trade_no": p.OutTradeNo, "transaction_id": p.TransactionID, "refund_id": p.RefundID,
			"status": want, "refund": p.Amount.Refund, "total": p.Amount.Total, "payer_refund": p.Amount.PayerRefund,
			"payer_total": p.Amount.PayerTotal, "user_received_account": p.UserReceivedAccount, "updated_at": stamp,
		}
		if p.SuccessTime != "" {
			set["success_time"] = p.SuccessTime
		}
		if p.Amount.SettlementRefund > 0 {
			set["settlement_refund"] = p.Amount.SettlementRefund
		}
		if p.Amount.DiscountRefund > 0 {
			set["discount_refund"] = p.Amount.DiscountRefund
		}
		return &effect{
			businessKey: p.OutRefundNo,
			op:          &store.Update{Key: ledger.RefundKey(p.OutRefundNo), Set: set, AllowMissing: true, ExpectIn: map[string][]any{"status": from}},
			superseded:  []string{"SUCCESS", "CLOSED"},
			stateAttr:   "status",
			summary:     map[string]any{"out_refund_no": p.OutRefundNo, "out_trade_no": p.OutTradeNo, "status": want, "refund": p.Amount.Refund},
		}, nil

	case EventPayScoreOpen, EventPayScoreClose:
		var p AuthorizationPayload
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		if err := required(map[string]string{"service_id": p.ServiceID, "openid": p.OpenID, "openorclose_time": p.OpenOrCloseTime}); err != nil {
			return nil, err
		}
		state := "AVAILABLE"
		if eventType == EventPayScoreClose {
			state = "UNAVAILABLE"
		}
		set := map[string]any{"service_id": p.ServiceID, "openid": p.OpenID, "state": state, "openorclose_time": p.OpenOrCloseTime,
			"user_service_status": p.UserServiceStatus, "updated_at": stamp}
		if p.AuthorizationCode != "" {
			set["authorization_code"] = p.AuthorizationCode
		}
		return &effect{
			businessKey: p.ServiceID + "#" + p.OpenID + "#" + p.OpenOrCloseTime,
			// Authorization events are ordered by their own time: an older
			// open must not undo a newer close delivered first.
			op: &store.Update{Key: ledger.AuthorizationKey(p.ServiceID, p.OpenID), Set: set, AllowMissing: true,
				ExpectBefore: map[string]any{"openorclose_time": p.OpenOrCloseTime}},
			superseded: []string{"AVAILABLE", "UNAVAILABLE"},
			stateAttr:  "state",
			summary:    map[string]any{"service_id": p.ServiceID, "openid": p.OpenID, "state": state},
		}, nil

	case EventPayScorePaid, EventPayScoreConfirm:
		var p PayScorePaidPayload
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		if err := required(map[string]string{"out_order_no": p.OutOrderNo}); err != nil {
			return nil, err
		}
		if eventType == EventPayScoreConfirm {
			return &effect{
				businessKey: p.OutOrderNo,
				op: &store.Update{Key: ledger.PayScoreOrderKey(p.OutOrderNo), Set: map[string]any{"user_confirmed": true, "updated_at": stamp},
					AllowMissing: true, ExpectIn: map[string][]any{"state": {"CREATED", "DOING"}}},
				superseded: []string{"DONE", "REVOKED", "EXPIRED"},
				stateAttr:  "state",
				summary:    map[string]any{"out_order_no": p.OutOrderNo},
			}, nil
		}
		if p.State != "DONE" || p.Collection.State != "USER_PAID" {
			return nil, fmt.Errorf("%w: USER_PAID needs state DONE and collection.state USER_PAID", errPayload)
		}
		set := map[string]any{"out_order_no": p.OutOrderNo, "order_id": p.OrderID, "service_id": p.ServiceID, "openid": p.OpenID,
			"state": "DONE", "state_description": "USER_PAID", "total_amount": p.TotalAmount,
			"paid_amount": p.Collection.PaidAmount, "updated_at": stamp}
		paidAt := now
		if n := len(p.Collection.Details); n > 0 {
			d := p.Collection.Details[n-1]
			if t, err := ledger.ParsePaidTime(d.PaidTime); err == nil {
				paidAt = t
			}
			set["transaction_id"] = d.TransactionID
			set["paid_time"] = d.PaidTime
			set["paid_type"] = d.PaidType
		}
		collection, err := json.Marshal(p.Collection)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		set["collection_json"] = string(collection)
		return &effect{
			businessKey: p.OutOrderNo,
			// Filed under the Shanghai day it was paid, as the payscore
			// function files orders it settles, so reconciliation finds it
			// (this also takes it out of the sweep's partition).
			op: &store.Update{Key: ledger.PayScoreOrderKey(p.OutOrderNo), Set: set, AllowMissing: true,
				ExpectIn: map[string][]any{"state": {"CREATED", "DOING"}},
				Index:    &store.IndexKey{PK: ledger.DayIndex(ledger.PayScoreDayKind, ledger.Day(paidAt)), SK: p.OutOrderNo}},
			superseded: []string{"DONE"},
			stateAttr:  "state",
			summary:    map[string]any{"out_order_no": p.OutOrderNo, "order_id": p.OrderID, "paid_amount": p.Collection.PaidAmount},
		}, nil

	case EventCouponSend:
		var p CouponSendPayload
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("%w: %w", errPayload, err)
		}
		if err := required(map[string]string{"coupon_code": p.CouponCode, "stock_id": p.StockID}); err != nil {
			return nil, err
		}
		set := map[string]any{"stock_id": p.StockID, "coupon_code": p.CouponCode, "state": "SENDED", "send_time": p.SendTime,
			"openid": p.OpenID, "send_channel": p.SendChannel, "send_merchant": p.SendMerchant, "updated_at": stamp}
		if p.UnionID != "" {
			set["unionid"] = p.UnionID
		}
		if p.ActID != "" {
			set["act_id"] = p.ActID
		}
		if len(p.AttachInfo) > 0 && string(p.AttachInfo) != "null" {
			set["attach_info_json"] = string(p.AttachInfo)
			// A pay-gift send names the payment that earned the coupon
			// (wechatpay-apiv3.md 3.4): kept as its own attribute so the
			// coupon can be traced to the order without parsing JSON.
			var attach struct {
				TransactionID string `json:"transaction_id"`
			}
			if json.Unmarshal(p.AttachInfo, &attach) == nil && attach.TransactionID != "" {
				set["paygift_transaction_id"] = attach.TransactionID
			}
		}
		return &effect{
			businessKey: p.StockID + "#" + p.CouponCode,
			op: &store.Update{Key: ledger.CouponKey(p.StockID, p.CouponCode), Set: set, AllowMissing: true,
				ExpectIn: map[string][]any{"state": {"SENDED"}}},
			superseded: []string{"USED", "EXPIRED", "DEACTIVATED", "DELETED"},
			stateAttr:  "state",
			summary:    map[string]any{"stock_id": p.StockID, "coupon_code": p.CouponCode, "send_channel": p.SendChannel},
		}, nil
	}
	return nil, fmt.Errorf("%w: event type %q has no handler", errPayload, eventType)
}
