package ledger

import "github.com/wxpay-serverless/wxpay-serverless/shared/store"

// Order kinds a refund can be made against.
const (
	KindOrder         = "ORDER"   // a payment order (out_trade_no)
	KindPayScoreOrder = "PSORDER" // a Pay Score service order (out_order_no)
)

// Refund statuses as the ledger keeps them: WeChat Pay's four
// (wechatpay-apiv3.md 5.3) plus REJECTED for a request WeChat Pay refused,
// which never became a refund.
const (
	RefundProcessing = "PROCESSING"
	RefundSuccess    = "SUCCESS"
	RefundClosed     = "CLOSED"
	RefundAbnormal   = "ABNORMAL"
	RefundRejected   = "REJECTED"
)

// RefundCounts reports whether a refund in status takes money out of the
// order (closed and rejected refunds return nothing and free their amount).
func RefundCounts(status string) bool { return status != RefundClosed && status != RefundRejected }

// TxnKey is the pointer from a WeChat Pay transaction_id to the ledger
// entry it paid (a payment order or a Pay Score order).
func TxnKey(transactionID string) store.Key { return store.Key{PK: "TXN#" + transactionID, SK: "TXN"} }

// RefundsKey is the refund book of a paid order: it lives in the order's
// partition (orderKey is OrderKey or PayScoreOrderKey) and serialises the
// refunds of that order.
func RefundsKey(orderKey store.Key) store.Key { return store.Key{PK: orderKey.PK, SK: "REFUNDS"} }

// RefundDiffKey is the record of a refund whose WeChat Pay split differs
// from the prediction (reconciliation reads them).
func RefundDiffKey(outRefundNo string) store.Key {
	return store.Key{PK: "REFUNDDIFF#" + outRefundNo, SK: "DIFF"}
}

// RefundDiffIndex lists the open refund differences (GSI1).
const RefundDiffIndex = "REFUNDDIFF#OPEN"

// TxnPointer is the item under TxnKey.
type TxnPointer struct {
	TransactionID string `dynamodbav:"transaction_id"`
	Kind          string `dynamodbav:"kind"` // KindOrder or KindPayScoreOrder
	No            string `dynamodbav:"no"`   // out_trade_no or out_order_no
}

// PaymentOrder is the order row (OrderKey) the payments function writes: the
// Order the notify function updates, plus what creating it needs.
type PaymentOrder struct {
	Order
	// LeaseUntil (unix seconds) marks the request that is creating the
	// order at WeChat Pay: identical concurrent requests wait for it instead
	// of calling WeChat again, and take over only once it has expired.
	LeaseUntil  int64  `dynamodbav:"lease_until,omitempty" json:"-"`
	Description string `dynamodbav:"description,omitempty"`
	// ClientType is what the client asked for: JSAPI, MINIPROGRAM, NATIVE,
	// APP or H5 (TradeType is WeChat Pay's: JSAPI, NATIVE, APP, MWEB).
	ClientType string `dynamodbav:"client_type,omitempty"`
	TimeExpire string `dynamodbav:"time_expire,omitempty"`
	CreatedAt  string `dynamodbav:"created_at,omitempty"`
	// PrepayState is PENDING until WeChat Pay answered the prepay, then READY.
	PrepayState string `dynamodbav:"prepay_state,omitempty"`
	PrepayID    string `dynamodbav:"prepay_id,omitempty"`
	CodeURL     string `dynamodbav:"code_url,omitempty"`
	H5URL       string `dynamodbav:"h5_url,omitempty"`
	// PayParams are the signed parameters the client passes to
	// wx.requestPayment (JSAPI, mini-program) or the APP SDK. Rows written
	// now leave them empty: they are signed when an answer needs them
	// (concurrently with the ledger write on create), with a fresh
	// timestamp and nonce; older rows keep the stored ones.
	PayParams map[string]string `dynamodbav:"pay_params,omitempty"`
	// RequestJSON is the WeChat Pay prepay body, resent unchanged on a replay.
	RequestJSON string `dynamodbav:"request_json,omitempty"`
	// RefundReserved mirrors the refund book: what refunds take out of the order.
	RefundReserved int64  `dynamodbav:"refund_reserved"`
	ClosedAt       string `dynamodbav:"closed_at,omitempty"`
}

// RefundRecord is the refund row (RefundKey). The payments function creates
// it (status PROCESSING before WeChat Pay is called, so that a notification
// racing the answer applies); the notify function moves its status with
// REFUND.* and overwrites payer_refund/settlement_refund/discount_refund with
// what the notification carries.
type RefundRecord struct {
	OutRefundNo   string `dynamodbav:"out_refund_no"`
	OutTradeNo    string `dynamodbav:"out_trade_no,omitempty"`
	OrderKind     string `dynamodbav:"order_kind,omitempty"`
	OrderNo       string `dynamodbav:"order_no,omitempty"`
	TransactionID string `dynamodbav:"transaction_id,omitempty"`
	RefundID      string `dynamodbav:"refund_id,omitempty"`
	Status        string `dynamodbav:"status"`
	// Submitted is true once WeChat Pay accepted the request.
	Submitted bool `dynamodbav:"submitted"`

	// WeChat Pay's figures (from the refund answer, the query or the
	// notification).
	Refund           int64             `dynamodbav:"refund"`
	Total            int64             `dynamodbav:"total"`
	PayerTotal       int64             `dynamodbav:"payer_total"`
	PayerRefund      int64             `dynamodbav:"payer_refund"`
	DiscountRefund   int64             `dynamodbav:"discount_refund"`
	SettlementRefund int64             `dynamodbav:"settlement_refund"`
	SettlementTotal  int64             `dynamodbav:"settlement_total"`
	PromotionRefunds []PromotionRefund `dynamodbav:"promotion_refunds,omitempty"`

	// The prediction made before WeChat Pay was called.
	PredictedPayerRefund      int64             `dynamodbav:"predicted_payer_refund"`
	PredictedDiscountRefund   int64             `dynamodbav:"predicted_discount_refund"`
	PredictedSettlementRefund int64             `dynamodbav:"predicted_settlement_refund"`
	PredictedSettlementTotal  int64             `dynamodbav:"predicted_settlement_total"`
	PredictedPromotions       []PromotionRefund `dynamodbav:"predicted_promotions,omitempty"`
	// PredictionDiff lists the differences found in WeChat Pay's answer.
	PredictionDiff []string `dynamodbav:"prediction_diff,omitempty"`

	Reason              string `dynamodbav:"reason,omitempty"`
	FundsAccount        string `dynamodbav:"funds_account,omitempty"`
	Channel             string `dynamodbav:"channel,omitempty"`
	UserReceivedAccount string `dynamodbav:"user_received_account,omitempty"`
	CreateTime          string `dynamodbav:"create_time,omitempty"` // WeChat Pay's
	SuccessTime         string `dynamodbav:"success_time,omitempty"`
	CreatedAt           string `dynamodbav:"created_at,omitempty"` // ours
	UpdatedAt           string `dynamodbav:"updated_at,omitempty"`
	RejectCode          string `dynamodbav:"reject_code,omitempty"`
	RejectMessage       string `dynamodbav:"reject_message,omitempty"`
	Source              string `dynamodbav:"source,omitempty"`
	// RequestDigest identifies the request that created the refund: the
	// same out_refund_no with another request is refused.
	RequestDigest string `dynamodbav:"request_digest,omitempty"`
}

// Predicted is the prediction as a split.
func (r *RefundRecord) Predicted() RefundSplit {
	return RefundSplit{Refund: r.Refund, PayerRefund: r.PredictedPayerRefund, DiscountRefund: r.PredictedDiscountRefund,
		SettlementRefund: r.PredictedSettlementRefund, SettlementTotal: r.PredictedSettlementTotal, Total: r.Total,
		PayerTotal: r.PayerTotal, Promotions: r.PredictedPromotions}
}

// Actual is WeChat Pay's split as last stored.
func (r *RefundRecord) Actual() RefundSplit {
	return RefundSplit{Refund: r.Refund, PayerRefund: r.PayerRefund, DiscountRefund: r.DiscountRefund,
		SettlementRefund: r.SettlementRefund, SettlementTotal: r.SettlementTotal, Total: r.Total, PayerTotal: r.PayerTotal,
		Promotions: r.PromotionRefunds}
}

// Differences compares the prediction with what WeChat Pay reported and
// lists every difference; nil when they agree, when WeChat Pay has reported
// nothing yet, or when the refund was not predicted (made outside the
// payments API). Reconciliation calls it on each refund row. A row that only
// a notification filled (the answer never arrived) is compared on the
// fields REFUND.* carries: refund, payer_refund and, when present,
// settlement_refund.
func (r *RefundRecord) Differences() []string {
	if r.RequestDigest == "" || r.RefundID == "" {
		return nil
	}
	predicted, actual := r.Predicted(), r.Actual()
	if !r.Submitted {
		actual.DiscountRefund = actual.Refund - actual.PayerRefund
		if actual.SettlementRefund == 0 {
			actual.SettlementRefund = predicted.SettlementRefund
		}
		actual.Promotions = nil
	}
	return RefundDifferences(predicted, actual)
}

// Taken is what this refund took out of the order for the next prediction:
// WeChat Pay's split once known, the prediction before.
func (r *RefundRecord) Taken() RefundSplit {
	if r.Submitted && r.RefundID != "" {
		a := r.Actual()
		if len(a.Promotions) == 0 && a.DiscountRefund > 0 {
			a.Promotions = r.PredictedPromotions // the notification carried no detail
		}
		return a
	}
	return r.Predicted()
}

// RefundBook is the item under RefundsKey: the refunds of one paid order, in
// the order they were requested. Seq guards concurrent refunds of the order.
type RefundBook struct {
	OrderKind     string   `dynamodbav:"order_kind"`
	OrderNo       string   `dynamodbav:"order_no"`
	TransactionID string   `dynamodbav:"transaction_id,omitempty"`
	Seq           int64    `dynamodbav:"seq"`
	RefundNos     []string `dynamodbav:"refund_nos"`
	Reserved      int64    `dynamodbav:"reserved"`
}
