// Package ledger is the merchant's own record of money and state: payment
// orders, refunds, Pay Score authorizations and service orders, coupons, and
// the exactly-once bookkeeping (notification and business-event records,
// the outbox). It defines the item keys and the domain types; it imports no
// AWS or HTTP package. Amounts are int64 fen everywhere.
package ledger

import (
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Shanghai is Asia/Shanghai (UTC+8 without daylight saving since 1991, so a
// fixed zone is exact and needs no tzdata in the Lambda image).
var Shanghai = time.FixedZone("Asia/Shanghai", 8*60*60)

// WechatTime formats t the way WeChat Pay expects: RFC 3339, second
// precision, +08:00.
func WechatTime(t time.Time) string { return t.In(Shanghai).Format("2006-01-02T15:04:05-07:00") }

// Day is the Shanghai calendar date of t (yyyy-MM-dd): the bill date.
func Day(t time.Time) string { return t.In(Shanghai).Format(time.DateOnly) }

// Item keys. Every key starts with its entity so partitions never collide.
func OrderKey(outTradeNo string) store.Key { return store.Key{PK: "ORDER#" + outTradeNo, SK: "STATE"} }

// RefundKey addresses a refund by out_refund_no.
func RefundKey(outRefundNo string) store.Key {
	return store.Key{PK: "REFUND#" + outRefundNo, SK: "STATE"}
}

// PayScoreOrderKey addresses a Pay Score service order by out_order_no.
func PayScoreOrderKey(outOrderNo string) store.Key {
	return store.Key{PK: "PSORDER#" + outOrderNo, SK: "STATE"}
}

// AuthorizationKey addresses a user's Pay Score authorization for a service.
func AuthorizationKey(serviceID, openID string) store.Key {
	return store.Key{PK: "PSAUTH#" + serviceID + "#" + openID, SK: "STATE"}
}

// CouponKey addresses a merchant coupon.
func CouponKey(stockID, couponCode string) store.Key {
	return store.Key{PK: "COUPON#" + stockID + "#" + couponCode, SK: "STATE"}
}

// NotificationKey is the dedupe record of a notification id.
func NotificationKey(id string) store.Key { return store.Key{PK: "NOTIFY#" + id, SK: "NOTIFY"} }

// EventKey is the dedupe record of a business key + event type.
func EventKey(eventType, businessKey string) store.Key {
	return store.Key{PK: "EVENT#" + eventType + "#" + businessKey, SK: "EVENT"}
}

// OutboxKey is a pending domain event.
func OutboxKey(id string) store.Key { return store.Key{PK: "OUTBOX#" + id, SK: "OUTBOX"} }

// OutboxIndex lists pending domain events (GSI1).
const OutboxIndex = "OUTBOX#PENDING"

// DayIndex is the GSI1 partition of ledger entries settled on a Shanghai day
// (reconciliation reads it).
func DayIndex(kind, day string) string { return "DAY#" + kind + "#" + day }

// TradeState is a payment order's state (trade_state).
type TradeState string

// Trade states.
const (
	TradeNotPay     TradeState = "NOTPAY"
	TradeSuccess    TradeState = "SUCCESS"
	TradeRefund     TradeState = "REFUND"
	TradeClosed     TradeState = "CLOSED"
	TradeRevoked    TradeState = "REVOKED"
	TradeUserPaying TradeState = "USERPAYING"
	TradePayError   TradeState = "PAYERROR"
)

// Coupon types of promotion_detail, normalised.
const (
	CouponCash   = "CASH"   // prepaid (预充值)
	CouponNoCash = "NOCASH" // no-prepaid (免充值): comes out of the merchant's settlement
)

// NormalizeCouponType maps the spellings in use to CASH/NOCASH: the SDK's
// refund enum says COUPON/DISCOUNT, v2 bills NO_CASH, current samples
// CASH/NOCASH (wechatpay-apiv3.md 5.3, 5.4).
func NormalizeCouponType(t string) string {
	switch strings.ToUpper(strings.TrimSpace(t)) {
	case "CASH", "COUPON":
		return CouponCash
	case "NOCASH", "NO_CASH", "DISCOUNT":
		return CouponNoCash
	}
	return strings.ToUpper(t)
}

// Promotion is one promotion_detail entry.
type Promotion struct {
	CouponID            string `json:"coupon_id" dynamodbav:"coupon_id"`
	Name                string `json:"name,omitempty" dynamodbav:"name,omitempty"`
	Scope               string `json:"scope,omitempty" dynamodbav:"scope,omitempty"`
	Type                string `json:"type" dynamodbav:"type"`
	Amount              int64  `json:"amount" dynamodbav:"amount"`
	StockID             string `json:"stock_id,omitempty" dynamodbav:"stock_id,omitempty"`
	WechatpayContribute int64  `json:"wechatpay_contribute" dynamodbav:"wechatpay_contribute"`
	MerchantContribute  int64  `json:"merchant_contribute" dynamodbav:"merchant_contribute"`
	OtherContribute     int64  `json:"other_contribute" dynamodbav:"other_contribute"`
	Currency            string `json:"currency,omitempty" dynamodbav:"currency,omitempty"`
}

// Order is a payment order as the ledger keeps it.
type Order struct {
	OutTradeNo      string      `dynamodbav:"out_trade_no" json:"out_trade_no"`
	TransactionID   string      `dynamodbav:"transaction_id,omitempty" json:"transaction_id,omitempty"`
	AppID           string      `dynamodbav:"appid,omitempty" json:"appid,omitempty"`
	MchID           string      `dynamodbav:"mchid,omitempty" json:"mchid,omitempty"`
	TradeType       string      `dynamodbav:"trade_type,omitempty" json:"trade_type,omitempty"`
	Status          TradeState  `dynamodbav:"status" json:"status"`
	Total           int64       `dynamodbav:"total" json:"total"`
	PayerTotal      int64       `dynamodbav:"payer_total" json:"payer_total"`
	SettlementTotal int64       `dynamodbav:"settlement_total" json:"settlement_total"`
	CouponTotal     int64       `dynamodbav:"coupon_total" json:"coupon_total"`
	NoCashTotal     int64       `dynamodbav:"nocash_total" json:"nocash_total"`
	Currency        string      `dynamodbav:"currency,omitempty" json:"currency,omitempty"`
	Promotions      []Promotion `dynamodbav:"promotions,omitempty" json:"promotion_detail,omitempty"`
	PayerOpenID     string      `dynamodbav:"payer_openid,omitempty" json:"payer_openid,omitempty"`
	SuccessTime     string      `dynamodbav:"success_time,omitempty" json:"success_time,omitempty"`
	BankType        string      `dynamodbav:"bank_type,omitempty" json:"bank_type,omitempty"`
	Attach          string      `dynamodbav:"attach,omitempty" json:"attach,omitempty"`
	Source          string      `dynamodbav:"source,omitempty" json:"source,omitempty"` // who created the row: api, notification, query
	UpdatedAt       string      `dynamodbav:"updated_at,omitempty" json:"updated_at,omitempty"`
}

// Settlement derives the settlement figures of an order paid with
// promotions: settlement_total = total - sum(NOCASH amounts), coupon total =
// CASH + NOCASH (wechatpay-apiv3.md 5.2).
func Settlement(total int64, promos []Promotion) (coupon, noCash, settlement int64) {
	for _, p := range promos {
		coupon += p.Amount
		if NormalizeCouponType(p.Type) == CouponNoCash {
			noCash += p.Amount
		}
	}
	return coupon, noCash, total - noCash
}

// MaxOpenIDLength bounds an openid (WeChat's are 28 characters today).
const MaxOpenIDLength = 128

// ValidOpenID reports whether s can be a WeChat openid: 1..128 characters
// of [0-9A-Za-z_-]. Anything else — path separators, dots, quotes, control
// or non-ASCII characters — is refused before it can reach a signed WeChat
// URL or a ledger key.
func ValidOpenID(s string) bool {
	if s == "" || len(s) > MaxOpenIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// EventPaymentSuccess is WeChat Pay's event type of a successful payment,
// also the detail type of the domain event however the ledger learned of it
// (notification or query).
const EventPaymentSuccess = "TRANSACTION.SUCCESS"

// EventPayScorePaid is the event type of a Pay Score order the user paid
// (notification or query, as EventPaymentSuccess).
const EventPayScorePaid = "PAYSCORE.USER_PAID"

// AppliedAttr names the per-event-type application counter of a ledger row:
// every path that applies the event (its notification, or a query that
// found it first) adds one in the same guarded write, so it never exceeds
// one per event type (the soak test checks it).
func AppliedAttr(eventType string) string { return "applied_" + eventType }
