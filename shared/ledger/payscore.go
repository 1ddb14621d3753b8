package ledger

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Pay Score (微信支付分, no-confirm mode): the service order as the ledger
// keeps it, its state machine (wechatpay-apiv3.md 2.4) and the pure rules the
// payscore function enforces before it calls WeChat Pay.

// PayScore order states (state), wechatpay-apiv3.md 2.4. Two pseudo-states
// exist only in the ledger: PayScoreCreating (the create call is in flight or
// its outcome is unknown) and PayScoreRejected (WeChat Pay refused the create).
const (
	PayScoreCreated  = "CREATED"
	PayScoreDoing    = "DOING"
	PayScoreDone     = "DONE"
	PayScoreRevoked  = "REVOKED"
	PayScoreExpired  = "EXPIRED"
	PayScoreCreating = "CREATING"
	PayScoreRejected = "REJECTED"
)

// State descriptions (state_description, only with DOING) and collection
// states (collection.state). The notify function writes state_description
// USER_PAID on DONE orders (PAYSCORE.USER_PAID); the ledger keeps that
// convention for every order WeChat reports paid.
const (
	PayScoreUserConfirm = "USER_CONFIRM"
	PayScoreMchComplete = "MCH_COMPLETE"
	PayScoreUserPaying  = "USER_PAYING"
	PayScoreUserPaid    = "USER_PAID"
)

// PayScoreAwaitingIndex is the GSI1 partition of orders completed by the
// merchant and waiting for WeChat's deduction (sort key: completion time +
// out_order_no). The missed-callback sweep reads it; a settled order moves
// to DayIndex(PayScoreDayKind, day).
const PayScoreAwaitingIndex = "PSORDER#AWAITING"

// PayScoreDayKind is the DayIndex kind of settled Pay Score orders.
const PayScoreDayKind = "PAYSCORE"

// AuthorizationCodeKey addresses a merchant pre-authorization code
// (authorization_code of POST /v3/payscore/permissions) of a service.
func AuthorizationCodeKey(serviceID, code string) store.Key {
	return store.Key{PK: "PSAUTHCODE#" + serviceID + "#" + code, SK: "STATE"}
}

// Authorization states (authorization_state), wechatpay-apiv3.md 2.1.
const (
	PayScoreAvailable   = "AVAILABLE"   // the user authorized the service
	PayScoreUnavailable = "UNAVAILABLE" // not authorized, or revoked
	PayScoreUnbindUser  = "UNBINDUSER"  // pre-authorized code no user has used yet
)

// PayScoreAuthorization is a user's authorization of a service
// (AuthorizationKey) or a merchant pre-authorization code
// (AuthorizationCodeKey). The notify function's PAYSCORE.USER_OPEN_SERVICE /
// USER_CLOSE_SERVICE effect writes the user rows with the same attributes
// (state, openorclose_time, user_service_status, authorization_code), ordered
// by openorclose_time.
type PayScoreAuthorization struct {
	ServiceID                string `dynamodbav:"service_id" json:"service_id"`
	OpenID                   string `dynamodbav:"openid,omitempty" json:"openid,omitempty"`
	AuthorizationCode        string `dynamodbav:"authorization_code,omitempty" json:"authorization_code,omitempty"`
	AppID                    string `dynamodbav:"appid,omitempty" json:"appid,omitempty"`
	State                    string `dynamodbav:"state" json:"state"`
	OpenOrCloseTime          string `dynamodbav:"openorclose_time,omitempty" json:"openorclose_time,omitempty"`
	UserServiceStatus        string `dynamodbav:"user_service_status,omitempty" json:"user_service_status,omitempty"`
	AuthorizationSuccessTime string `dynamodbav:"authorization_success_time,omitempty" json:"authorization_success_time,omitempty"`
	CancelAuthorizationTime  string `dynamodbav:"cancel_authorization_time,omitempty" json:"cancel_authorization_time,omitempty"`
	NotifyURL                string `dynamodbav:"notify_url,omitempty" json:"-"`
	TerminatedAt             string `dynamodbav:"terminated_at,omitempty" json:"terminated_at,omitempty"`
	CreatedAt                string `dynamodbav:"created_at,omitempty" json:"created_at,omitempty"`
	UpdatedAt                string `dynamodbav:"updated_at,omitempty" json:"updated_at,omitempty"`
	Source                   string `dynamodbav:"source,omitempty" json:"source,omitempty"`
}

// PayScoreMode is the sub-mode WeChat Pay operations fix per service_id; it
// decides which risk_fund names are legal (wechatpay-apiv3.md 2.3).
type PayScoreMode string

// Pay Score modes.
const (
	// PayScoreEnjoyFirst is 先享 (pay after the service): risk_fund.name
	// ESTIMATE_ORDER_COST. The official no-confirm guide says no-confirm
	// services can only use this mode.
	PayScoreEnjoyFirst PayScoreMode = "enjoy_first"
	// PayScoreDepositFree is 先免 (deposit waived): DEPOSIT, ADVANCE or
	// CASH_DEPOSIT.
	PayScoreDepositFree PayScoreMode = "deposit_free"
)

// Valid reports whether m is a known mode.
func (m PayScoreMode) Valid() bool { return m == PayScoreEnjoyFirst || m == PayScoreDepositFree }

// RiskFundNames lists the risk_fund.name values legal in mode m.
func (m PayScoreMode) RiskFundNames() []string {
	switch m {
	case PayScoreEnjoyFirst:
		return []string{"ESTIMATE_ORDER_COST"}
	case PayScoreDepositFree:
		return []string{"DEPOSIT", "ADVANCE", "CASH_DEPOSIT"}
	}
	return nil
}

// AllowsRiskFund reports whether name is legal in mode m.
func (m PayScoreMode) AllowsRiskFund(name string) bool {
	for _, n := range m.RiskFundNames() {
		if n == name {
			return true
		}
	}
	return false
}

// PayScoreItem is one post_payments / post_discounts entry. Amount is the
// item's total in fen (not a unit price); Count is informational.
type PayScoreItem struct {
	Name        string `dynamodbav:"name" json:"name"`
	Amount      int64  `dynamodbav:"amount" json:"amount"`
	Description string `dynamodbav:"description,omitempty" json:"description,omitempty"`
	Count       int64  `dynamodbav:"count,omitempty" json:"count,omitempty"`
}

// PayScoreRiskFund is the order's risk_fund.
type PayScoreRiskFund struct {
	Name        string `dynamodbav:"name" json:"name"`
	Amount      int64  `dynamodbav:"amount" json:"amount"`
	Description string `dynamodbav:"description,omitempty" json:"description,omitempty"`
}

// PayScoreTimeRange is the service time, yyyyMMddHHmmss in Asia/Shanghai.
type PayScoreTimeRange struct {
	StartTime       string `dynamodbav:"start_time" json:"start_time"`
	StartTimeRemark string `dynamodbav:"start_time_remark,omitempty" json:"start_time_remark,omitempty"`
	EndTime         string `dynamodbav:"end_time,omitempty" json:"end_time,omitempty"`
	EndTimeRemark   string `dynamodbav:"end_time_remark,omitempty" json:"end_time_remark,omitempty"`
}

// PayScoreLocation is the service location.
type PayScoreLocation struct {
	StartLocation string `dynamodbav:"start_location,omitempty" json:"start_location,omitempty"`
	EndLocation   string `dynamodbav:"end_location,omitempty" json:"end_location,omitempty"`
}

// PayScoreDevice identifies the devices of an unattended service.
type PayScoreDevice struct {
	StartDeviceID string `dynamodbav:"start_device_id,omitempty" json:"start_device_id,omitempty"`
	EndDeviceID   string `dynamodbav:"end_device_id,omitempty" json:"end_device_id,omitempty"`
	MaterielNo    string `dynamodbav:"materiel_no,omitempty" json:"materiel_no,omitempty"`
}

// PayScoreOrder is a service order as the ledger keeps it under
// PayScoreOrderKey. The notify function's PAYSCORE.USER_PAID effect writes
// the same attributes (state, state_description, order_id, total_amount,
// paid_amount, transaction_id, paid_time, paid_type, collection_json).
type PayScoreOrder struct {
	OutOrderNo          string             `dynamodbav:"out_order_no" json:"out_order_no"`
	ServiceID           string             `dynamodbav:"service_id,omitempty" json:"service_id,omitempty"`
	AppID               string             `dynamodbav:"appid,omitempty" json:"appid,omitempty"`
	OpenID              string             `dynamodbav:"openid,omitempty" json:"openid,omitempty"`
	OrderID             string             `dynamodbav:"order_id,omitempty" json:"order_id,omitempty"`
	State               string             `dynamodbav:"state" json:"state"`
	StateDescription    string             `dynamodbav:"state_description,omitempty" json:"state_description,omitempty"`
	CollectionState     string             `dynamodbav:"collection_state,omitempty" json:"collection_state,omitempty"`
	ServiceIntroduction string             `dynamodbav:"service_introduction,omitempty" json:"service_introduction,omitempty"`
	PostPayments        []PayScoreItem     `dynamodbav:"post_payments,omitempty" json:"post_payments,omitempty"`
	PostDiscounts       []PayScoreItem     `dynamodbav:"post_discounts,omitempty" json:"post_discounts,omitempty"`
	TotalAmount         int64              `dynamodbav:"total_amount" json:"total_amount"`
	RiskFund            *PayScoreRiskFund  `dynamodbav:"risk_fund,omitempty" json:"risk_fund,omitempty"`
	TimeRange           *PayScoreTimeRange `dynamodbav:"time_range,omitempty" json:"time_range,omitempty"`
	Location            *PayScoreLocation  `dynamodbav:"location,omitempty" json:"location,omitempty"`
	Device              *PayScoreDevice    `dynamodbav:"device,omitempty" json:"device,omitempty"`
	Attach              string             `dynamodbav:"attach,omitempty" json:"attach,omitempty"`
	NotifyURL           string             `dynamodbav:"notify_url,omitempty" json:"-"`
	PaidAmount          int64              `dynamodbav:"paid_amount" json:"paid_amount"`
	TransactionID       string             `dynamodbav:"transaction_id,omitempty" json:"transaction_id,omitempty"`
	PaidTime            string             `dynamodbav:"paid_time,omitempty" json:"paid_time,omitempty"`
	PaidType            string             `dynamodbav:"paid_type,omitempty" json:"paid_type,omitempty"`
	CollectionJSON      string             `dynamodbav:"collection_json,omitempty" json:"-"`
	CancelReason        string             `dynamodbav:"cancel_reason,omitempty" json:"cancel_reason,omitempty"`
	ModifyReason        string             `dynamodbav:"modify_reason,omitempty" json:"modify_reason,omitempty"`
	LastError           string             `dynamodbav:"last_error,omitempty" json:"last_error,omitempty"`
	CreatedAt           string             `dynamodbav:"created_at,omitempty" json:"created_at,omitempty"`
	CompletedAt         string             `dynamodbav:"completed_at,omitempty" json:"completed_at,omitempty"`
	SettledAt           string             `dynamodbav:"settled_at,omitempty" json:"settled_at,omitempty"`
	UpdatedAt           string             `dynamodbav:"updated_at,omitempty" json:"updated_at,omitempty"`
	// LeaseUntil single-flights complete/modify/cancel/sync per order
	// (WeChat answers "deduction in progress" to concurrent calls).
	LeaseUntil string `dynamodbav:"lease_until,omitempty" json:"-"`
	Source     string `dynamodbav:"source,omitempty" json:"source,omitempty"`
}

// Collection returns the collection state, deriving it for rows written by
// the notify function (which records DONE + state_description USER_PAID).
func (o *PayScoreOrder) Collection() string {
	if o.State == PayScoreDone && (o.StateDescription == PayScoreUserPaid || o.CollectionState == "") {
		return PayScoreUserPaid
	}
	return o.CollectionState
}

// Terminal reports whether the order can no longer change.
func (o *PayScoreOrder) Terminal() bool {
	switch o.State {
	case PayScoreDone, PayScoreRevoked, PayScoreExpired:
		return true
	}
	return false
}

// Describe renders state + state_description + collection.state, the way
// orders must be judged (wechatpay-apiv3.md 2.4).
func (o *PayScoreOrder) Describe() string {
	s := o.State
	if o.StateDescription != "" {
		s += "/" + o.StateDescription
	}
	if c := o.Collection(); c != "" {
		s += ", collection " + c
	}
	return s
}

// PayScoreAction is a merchant call on an existing order.
type PayScoreAction string

// Merchant calls on a service order (wechatpay-apiv3.md 2.2).
const (
	PayScoreComplete PayScoreAction = "complete"
	PayScoreCancel   PayScoreAction = "cancel"
	PayScoreModify   PayScoreAction = "modify"
	PayScoreSync     PayScoreAction = "sync"
)

// ErrPayScoreTransition is an action the order's current state does not allow.
var ErrPayScoreTransition = errors.New("ledger: pay score order state does not allow this call")

// CheckTransition enforces the state machine of wechatpay-apiv3.md 2.4:
//   - complete: DOING/USER_CONFIRM only (one-shot);
//   - cancel: CREATED, or DOING/USER_CONFIRM (before complete);
//   - modify and sync: DOING/MCH_COMPLETE with collection USER_PAYING.
//
// A refusal wraps ErrPayScoreTransition and names the current state.
func (o *PayScoreOrder) CheckTransition(a PayScoreAction) error {
	ok := false
	switch a {
	case PayScoreComplete:
		ok = o.State == PayScoreDoing && o.StateDescription == PayScoreUserConfirm
	case PayScoreCancel:
		ok = o.State == PayScoreCreated || (o.State == PayScoreDoing && o.StateDescription == PayScoreUserConfirm)
	case PayScoreModify, PayScoreSync:
		ok = o.State == PayScoreDoing && o.StateDescription == PayScoreMchComplete && o.Collection() == PayScoreUserPaying
	default:
		return fmt.Errorf("%w: unknown call %q", ErrPayScoreTransition, a)
	}
	if !ok {
		return fmt.Errorf("%w: %s is not allowed in state %s", ErrPayScoreTransition, a, o.Describe())
	}
	return nil
}

// PayScoreTotal is Σpost_payments.amount − Σpost_discounts.amount, the only
// total_amount WeChat Pay accepts.
func PayScoreTotal(payments, discounts []PayScoreItem) int64 {
	var total int64
	for _, p := range payments {
		total += p.Amount
	}
	for _, d := range discounts {
		total -= d.Amount
	}
	return total
}

// payScoreTimeLayout is yyyyMMddHHmmss.
const payScoreTimeLayout = "20060102150405"

// PayScoreTime formats t as Pay Score time_range/paid_time values do:
// yyyyMMddHHmmss in Asia/Shanghai.
func PayScoreTime(t time.Time) string { return t.In(Shanghai).Format(payScoreTimeLayout) }

// ParsePayScoreTime parses yyyyMMddHHmmss as Asia/Shanghai time.
func ParsePayScoreTime(s string) (time.Time, error) {
	if len(s) != len(payScoreTimeLayout) {
		return time.Time{}, fmt.Errorf("ledger: %q is not yyyyMMddHHmmss", s)
	}
	t, err := time.ParseInLocation(payScoreTimeLayout, s, Shanghai)
	if err != nil {
		return time.Time{}, fmt.Errorf("ledger: %q is not yyyyMMddHHmmss: %w", s, err)
	}
	return t, nil
}

// ParsePaidTime reads a paid_time as WeChat reports it: yyyyMMddHHmmss,
// yyyyMMdd (midnight, the sync form) or RFC 3339.
func ParsePaidTime(s string) (time.Time, error) {
	switch len(s) {
	case len(payScoreTimeLayout):
		return ParsePayScoreTime(s)
	case len("20060102"):
		t, err := time.ParseInLocation("20060102", s, Shanghai)
		if err != nil {
			return time.Time{}, fmt.Errorf("ledger: paid_time %q: %w", s, err)
		}
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("ledger: paid_time %q is neither yyyyMMddHHmmss, yyyyMMdd nor RFC 3339", s)
	}
	return t, nil
}

// ValidOutOrderNo: 1..32 characters of [0-9A-Za-z_-|*] (wechatpay-apiv3.md 2.0).
func ValidOutOrderNo(s string) bool { return validCharset(s, 32, "_-|*") }

// ValidAuthorizationCode: 1..32 characters of [0-9A-Za-z_-*] (2.1 A1).
func ValidAuthorizationCode(s string) bool { return validCharset(s, 32, "_-*") }

func validCharset(s string, max int, extra string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}
