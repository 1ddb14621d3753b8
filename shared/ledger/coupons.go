package ledger

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Merchant coupons (商家券) and pay-gift activities (支付有礼): the stock,
// coupon, activity and request-number rows of the coupons function.
//
// A coupon row (CouponKey) is shared with the notify function: COUPON.SEND
// upserts it with state SENDED, openid, send_channel, send_merchant,
// send_time and attach_info_json, guarded by state == SENDED, so the
// attribute names below must stay those of shared/app/notify/effects.go.

// Coupon states (coupon_state), wechatpay-apiv3.md 3.3.
const (
	CouponSended      = "SENDED" // usable
	CouponUsed        = "USED"
	CouponExpired     = "EXPIRED"
	CouponDeleted     = "DELETED"     // deleted by the user
	CouponDeactivated = "DEACTIVATED" // invalidated by the merchant
)

// StockCreated is the stock_state the ledger records between a successful
// create (WeChat answers only stock_id and create_time) and the first query,
// which records WeChat's own state (UNAUDIT, RUNNING, STOPED, PAUSED).
const StockCreated = "CREATED"

// Request-number states: PENDING from before the WeChat call until its
// outcome is known; a retry of a PENDING request re-sends the stored call
// with the same number.
const (
	RequestPending = "PENDING"
	RequestDone    = "DONE"
	RequestFailed  = "FAILED"
)

// StocksIndex and ActivitiesIndex are the GSI1 partitions listing stocks and
// pay-gift activities by creation time.
const (
	StocksIndex     = "BUSIFAVOR#STOCKS"
	ActivitiesIndex = "PAYGIFT#ACTIVITIES"
)

// StockKey addresses a merchant-coupon stock.
func StockKey(stockID string) store.Key { return store.Key{PK: "STOCK#" + stockID, SK: "STATE"} }

// ActivityKey addresses a pay-gift activity.
func ActivityKey(activityID string) store.Key {
	return store.Key{PK: "PAYGIFT#" + activityID, SK: "STATE"}
}

// CouponHistoryPrefix is the sort-key prefix of a coupon's history items,
// kept in the coupon's own partition (query CouponKey(...).PK with it).
const CouponHistoryPrefix = "HIST#"

// CouponHistoryKey addresses one history entry of a coupon: what happened
// (send, use, return, deactivate, associate, disassociate), when, under
// which request number.
func CouponHistoryKey(stockID, couponCode, at, action, requestNo string) store.Key {
	return store.Key{PK: CouponKey(stockID, couponCode).PK, SK: CouponHistoryPrefix + at + "#" + action + "#" + requestNo}
}

// CouponRequestKey addresses the record of one request number of a kind
// (use, return, create_stock...): written before the WeChat call.
func CouponRequestKey(kind, requestNo string) store.Key {
	return store.Key{PK: "CPNREQ#" + kind + "#" + requestNo, SK: "REQ"}
}

// CouponSlotKey addresses the request number generated for one intent
// (kind, business scope, request digest), so that a retry of the same
// request finds and reuses it.
func CouponSlotKey(kind, scope, digest string) store.Key {
	return store.Key{PK: "CPNSLOT#" + kind + "#" + scope + "#" + digest, SK: "SLOT"}
}

// CouponCallbackKey addresses the merchant-coupon callback URL set for a
// merchant.
func CouponCallbackKey(mchID string) store.Key {
	return store.Key{PK: "CPNCALLBACK#" + mchID, SK: "STATE"}
}

// Stock is a merchant-coupon stock (批次) as the ledger keeps it.
type Stock struct {
	StockID            string `dynamodbav:"stock_id" json:"stock_id"`
	StockName          string `dynamodbav:"stock_name" json:"stock_name"`
	StockType          string `dynamodbav:"stock_type" json:"stock_type"`
	CouponCodeMode     string `dynamodbav:"coupon_code_mode" json:"coupon_code_mode"`
	BelongMerchant     string `dynamodbav:"belong_merchant" json:"belong_merchant"`
	State              string `dynamodbav:"stock_state" json:"stock_state"`
	MaxCoupons         int64  `dynamodbav:"max_coupons" json:"max_coupons"`
	MaxCouponsPerUser  int64  `dynamodbav:"max_coupons_per_user" json:"max_coupons_per_user"`
	MaxCouponsByDay    int64  `dynamodbav:"max_coupons_by_day,omitempty" json:"max_coupons_by_day,omitempty"`
	AvailableBeginTime string `dynamodbav:"available_begin_time" json:"available_begin_time"`
	AvailableEndTime   string `dynamodbav:"available_end_time" json:"available_end_time"`
	NotifyAppID        string `dynamodbav:"notify_appid,omitempty" json:"notify_appid,omitempty"`
	OutRequestNo       string `dynamodbav:"out_request_no" json:"out_request_no"`
	// UploadedCodes counts codes WeChat accepted (MERCHANT_UPLOAD), minus
	// deleted ones.
	UploadedCodes int64 `dynamodbav:"uploaded_codes" json:"uploaded_codes"`
	// From the last query of the stock.
	TotalSendNum       int64  `dynamodbav:"total_send_num" json:"total_send_num"`
	TodaySendNum       int64  `dynamodbav:"today_send_num" json:"today_send_num"`
	AvailableCodeCount int64  `dynamodbav:"available_code_count" json:"available_code_count"`
	SyncedAt           string `dynamodbav:"synced_at,omitempty" json:"synced_at,omitempty"`
	CreateTime         string `dynamodbav:"create_time" json:"create_time"`
	UpdatedAt          string `dynamodbav:"updated_at" json:"updated_at"`
	// RequestJSON is the create body as sent to WeChat Pay.
	RequestJSON string `dynamodbav:"request_json" json:"-"`
}

// Coupon is one merchant coupon of a user as the ledger keeps it.
type Coupon struct {
	StockID        string `dynamodbav:"stock_id" json:"stock_id"`
	CouponCode     string `dynamodbav:"coupon_code" json:"coupon_code"`
	State          string `dynamodbav:"state" json:"state"`
	OpenID         string `dynamodbav:"openid,omitempty" json:"openid,omitempty"`
	UnionID        string `dynamodbav:"unionid,omitempty" json:"unionid,omitempty"`
	AppID          string `dynamodbav:"appid,omitempty" json:"appid,omitempty"`
	SendChannel    string `dynamodbav:"send_channel,omitempty" json:"send_channel,omitempty"`
	SendMerchant   string `dynamodbav:"send_merchant,omitempty" json:"send_merchant,omitempty"`
	SendTime       string `dynamodbav:"send_time,omitempty" json:"send_time,omitempty"`
	SendRequestNo  string `dynamodbav:"send_request_no,omitempty" json:"send_request_no,omitempty"`
	ActID          string `dynamodbav:"act_id,omitempty" json:"act_id,omitempty"`
	AttachInfoJSON string `dynamodbav:"attach_info_json,omitempty" json:"attach_info,omitempty"`
	// PayGiftTransactionID is attach_info.transaction_id of a pay-gift send:
	// the payment that earned the coupon.
	PayGiftTransactionID string `dynamodbav:"paygift_transaction_id,omitempty" json:"paygift_transaction_id,omitempty"`

	UseRequestNo        string `dynamodbav:"use_request_no,omitempty" json:"use_request_no,omitempty"`
	UseTime             string `dynamodbav:"use_time,omitempty" json:"use_time,omitempty"`
	WechatpayUseTime    string `dynamodbav:"wechatpay_use_time,omitempty" json:"wechatpay_use_time,omitempty"`
	UseOutTradeNo       string `dynamodbav:"use_out_trade_no,omitempty" json:"use_out_trade_no,omitempty"`
	AssociateOutTradeNo string `dynamodbav:"associate_out_trade_no,omitempty" json:"associate_out_trade_no,omitempty"`
	ReturnRequestNo     string `dynamodbav:"return_request_no,omitempty" json:"return_request_no,omitempty"`
	ReturnTime          string `dynamodbav:"return_time,omitempty" json:"return_time,omitempty"`
	DeactivateRequestNo string `dynamodbav:"deactivate_request_no,omitempty" json:"deactivate_request_no,omitempty"`
	DeactivateTime      string `dynamodbav:"deactivate_time,omitempty" json:"deactivate_time,omitempty"`
	DeactivateReason    string `dynamodbav:"deactivate_reason,omitempty" json:"deactivate_reason,omitempty"`
	UpdatedAt           string `dynamodbav:"updated_at,omitempty" json:"updated_at,omitempty"`
	// LastRequestNo and LastIntent (kind#digest of the request without its
	// number) name the request that moved the coupon last: identical
	// requests share one number per stage, and a late copy of a completed
	// one replays its answer.
	LastRequestNo string `dynamodbav:"last_request_no,omitempty" json:"-"`
	LastIntent    string `dynamodbav:"last_intent,omitempty" json:"-"`
}

// CouponEvent is one history entry of a coupon (CouponHistoryKey).
type CouponEvent struct {
	StockID    string `dynamodbav:"stock_id" json:"stock_id"`
	CouponCode string `dynamodbav:"coupon_code" json:"coupon_code"`
	Action     string `dynamodbav:"action" json:"action"`
	RequestNo  string `dynamodbav:"request_no,omitempty" json:"request_no,omitempty"`
	At         string `dynamodbav:"at" json:"at"`
	Detail     string `dynamodbav:"detail,omitempty" json:"detail,omitempty"`
}

// CouponRequest is the record of one request number (CouponRequestKey):
// the exact call sent to WeChat Pay, stored before it is sent, so a retry
// re-sends it byte for byte under the same number.
type CouponRequest struct {
	Kind         string `dynamodbav:"kind" json:"kind"`
	RequestNo    string `dynamodbav:"request_no" json:"request_no"`
	Scope        string `dynamodbav:"scope" json:"scope"`
	State        string `dynamodbav:"state" json:"state"`
	Method       string `dynamodbav:"method" json:"method"`
	Path         string `dynamodbav:"path" json:"path"`
	Query        string `dynamodbav:"query,omitempty" json:"query,omitempty"`
	BodyJSON     string `dynamodbav:"body_json,omitempty" json:"body_json,omitempty"`
	ResultJSON   string `dynamodbav:"result_json,omitempty" json:"result_json,omitempty"`
	ErrorCode    string `dynamodbav:"error_code,omitempty" json:"error_code,omitempty"`
	ErrorMessage string `dynamodbav:"error_message,omitempty" json:"error_message,omitempty"`
	CreatedAt    string `dynamodbav:"created_at" json:"created_at"`
	UpdatedAt    string `dynamodbav:"updated_at" json:"updated_at"`
	// LeaseUntil (unix seconds) marks the request that is calling WeChat Pay
	// right now; identical concurrent requests wait for its answer.
	LeaseUntil int64 `dynamodbav:"lease_until,omitempty" json:"-"`
}

// CouponSlot is the generated request number of one intent (CouponSlotKey).
type CouponSlot struct {
	Kind      string `dynamodbav:"kind"`
	RequestNo string `dynamodbav:"request_no"`
	CreatedAt string `dynamodbav:"created_at"`
}

// Activity is a pay-gift activity as the ledger keeps it.
type Activity struct {
	ActivityID   string   `dynamodbav:"activity_id" json:"activity_id"`
	ActivityName string   `dynamodbav:"activity_name" json:"activity_name"`
	Status       string   `dynamodbav:"activity_status" json:"activity_status"`
	BeginTime    string   `dynamodbav:"begin_time" json:"begin_time"`
	EndTime      string   `dynamodbav:"end_time" json:"end_time"`
	SendContent  string   `dynamodbav:"send_content" json:"send_content"`
	StockIDs     []string `dynamodbav:"stock_ids" json:"stock_ids"`
	Merchants    []string `dynamodbav:"merchants" json:"merchants"`
	Minimum      int64    `dynamodbav:"transaction_amount_minimum" json:"transaction_amount_minimum"`
	OutRequestNo string   `dynamodbav:"out_request_no" json:"out_request_no"`
	CreateTime   string   `dynamodbav:"create_time" json:"create_time"`
	// TerminateTime is set when the activity was terminated through us.
	TerminateTime string `dynamodbav:"terminate_time,omitempty" json:"terminate_time,omitempty"`
	UpdatedAt     string `dynamodbav:"updated_at" json:"updated_at"`
	RequestJSON   string `dynamodbav:"request_json" json:"-"`
}

// ValidRequestNo reports whether s is a WeChat Pay request number: 1..max
// characters of letters, digits and | _ * - (wechatpay-apiv3.md 3.2).
func ValidRequestNo(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '|' || r == '_' || r == '*' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// RequestNoLen is the length of generated request numbers: it fits every
// request-number field of the coupon APIs, the shortest being
// use_request_no (32).
const RequestNoLen = 32

const requestNoAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// NewRequestNo generates a request number in WeChat's suggested shape
// "mchid + date + serial" (wechatpay-apiv3.md 3.1, B1): the merchant id,
// the Shanghai date (yyyyMMdd) and random characters up to RequestNoLen.
func NewRequestNo(mchID string, now time.Time) (string, error) {
	prefix := mchID + now.In(Shanghai).Format("20060102")
	if len(prefix) > RequestNoLen-12 {
		prefix = prefix[:RequestNoLen-12]
	}
	b := make([]byte, RequestNoLen-len(prefix))
	max := big.NewInt(int64(len(requestNoAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("ledger: request number: %w", err)
		}
		b[i] = requestNoAlphabet[v.Int64()]
	}
	return prefix + string(b), nil
}
