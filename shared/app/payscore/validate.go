package payscore

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Field limits (wechatpay-apiv3.md 2.2). Where the reference gives none
// (locations, remarks, device ids, openid) the limit is a conservative
// choice: UNCONFIRMED at WeChat, so we refuse earlier rather than later.
const (
	maxServiceIntroduction = 20
	maxItemName            = 20
	maxItemDescription     = 30
	maxPostPayments        = 100
	maxPostDiscounts       = 30
	maxItemCount           = 100
	maxRiskFundDescription = 30
	maxAttach              = 256
	maxReason              = 50
	maxTimeRemark          = 20
	maxLocation            = 50 // UNCONFIRMED
	maxDeviceID            = 32 // UNCONFIRMED
	maxOpenID              = 128
	maxGoodsTag            = 32
	maxNotifyURL           = 255
)

// createRequest is the body of POST /payscore/orders. The function adds
// appid, service_id, notify_url and need_user_confirm=false.
type createRequest struct {
	OutOrderNo          string                    `json:"out_order_no"`
	OpenID              string                    `json:"openid"`
	ServiceIntroduction string                    `json:"service_introduction"`
	PostPayments        []ledger.PayScoreItem     `json:"post_payments,omitempty"`
	PostDiscounts       []ledger.PayScoreItem     `json:"post_discounts,omitempty"`
	RiskFund            *ledger.PayScoreRiskFund  `json:"risk_fund"`
	TimeRange           *ledger.PayScoreTimeRange `json:"time_range"`
	Location            *ledger.PayScoreLocation  `json:"location,omitempty"`
	Attach              string                    `json:"attach,omitempty"`
	Device              *ledger.PayScoreDevice    `json:"device,omitempty"`
}

// completeRequest is the body of POST /payscore/orders/{no}/complete.
type completeRequest struct {
	PostPayments  []ledger.PayScoreItem `json:"post_payments"`
	PostDiscounts []ledger.PayScoreItem `json:"post_discounts,omitempty"`
	TotalAmount   *int64                `json:"total_amount"`
	TimeRange     *struct {
		EndTime       string `json:"end_time,omitempty"`
		EndTimeRemark string `json:"end_time_remark,omitempty"`
	} `json:"time_range,omitempty"`
	Location *struct {
		EndLocation string `json:"end_location,omitempty"`
	} `json:"location,omitempty"`
	ProfitSharing bool                   `json:"profit_sharing,omitempty"`
	GoodsTag      string                 `json:"goods_tag,omitempty"`
	Device        *ledger.PayScoreDevice `json:"device,omitempty"`
}

// modifyRequest is the body of POST /payscore/orders/{no}/modify.
type modifyRequest struct {
	PostPayments  []ledger.PayScoreItem  `json:"post_payments"`
	PostDiscounts []ledger.PayScoreItem  `json:"post_discounts,omitempty"`
	TotalAmount   *int64                 `json:"total_amount"`
	Reason        string                 `json:"reason"`
	Device        *ledger.PayScoreDevice `json:"device,omitempty"`
}

// cancelRequest is the body of POST /payscore/orders/{no}/cancel.
type cancelRequest struct {
	Reason string `json:"reason"`
}

// syncRequest is the body of POST /payscore/orders/{no}/sync.
type syncRequest struct {
	Type   string `json:"type"`
	Detail *struct {
		PaidTime string `json:"paid_time"`
	} `json:"detail"`
}

// syncOrderPaid is the only sync type (wechatpay-apiv3.md 2.2 O7).
const syncOrderPaid = "Order_Paid"

func paramError(format string, args ...any) error {
	return apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, format, args...)
}

func tooLong(field, v string, max int) error {
	if n := utf8.RuneCountInString(v); n > max {
		return apigw.Errorf(http.StatusBadRequest, CodeFieldTooLong, "%s has %d characters, at most %d are allowed", field, n, max)
	}
	return nil
}

// limit is one field's length rule.
type limit struct {
	field, value string
	max          int
}

func checkLengths(limits ...limit) error {
	for _, l := range limits {
		if err := tooLong(l.field, l.value, l.max); err != nil {
			return err
		}
	}
	return nil
}

func checkOutOrderNo(no string) error {
	if !ledger.ValidOutOrderNo(no) {
		return apigw.Errorf(http.StatusBadRequest, CodeInvalidOutOrderNo, "out_order_no %q must be 1-32 characters of 0-9 A-Z a-z _ - | *", no)
	}
	return nil
}

func checkOpenID(openid string) error {
	if openid == "" {
		return paramError("openid is required: no-confirm orders are created for an authorized user")
	}
	if !validOpenID(openid) {
		return paramError("openid %q is not a WeChat openid (1-%d characters of 0-9 A-Z a-z _ -)", openid, maxOpenID)
	}
	return nil
}

// validOpenID: 1..128 characters of [0-9A-Za-z_-].
func validOpenID(s string) bool { return ledger.ValidOpenID(s) }

// checkItems enforces the post_payments / post_discounts rules: names
// required, ≤20 characters and unique (商品信息 may repeat in payments),
// descriptions ≤30, amounts ≥ 0 fen, count 1..100 when given.
func checkItems(field string, items []ledger.PayScoreItem, max int, repeatable string) error {
	if len(items) > max {
		return paramError("%s has %d items, at most %d are allowed", field, len(items), max)
	}
	seen := map[string]bool{}
	for i, it := range items {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case it.Name == "":
			return paramError("%s.name is required", at)
		case it.Amount < 0:
			return apigw.Errorf(http.StatusBadRequest, CodeInvalidAmount, "%s.amount is %d fen; amounts must be >= 0", at, it.Amount)
		case it.Count < 0 || it.Count > maxItemCount:
			return apigw.Errorf(http.StatusBadRequest, CodeInvalidAmount, "%s.count is %d; it must be 1..%d", at, it.Count, maxItemCount)
		case seen[it.Name] && it.Name != repeatable:
			return paramError("%s.name %q repeats; item names must be unique", at, it.Name)
		}
		if err := checkLengths(limit{at + ".name", it.Name, maxItemName}, limit{at + ".description", it.Description, maxItemDescription}); err != nil {
			return err
		}
		seen[it.Name] = true
	}
	return nil
}

// checkTotal enforces total_amount == Σpost_payments − Σpost_discounts ≥ 0.
func checkTotal(payments, discounts []ledger.PayScoreItem, total *int64) error {
	if len(payments) == 0 {
		return paramError("post_payments is required (1..%d items)", maxPostPayments)
	}
	if total == nil {
		return paramError("total_amount is required")
	}
	if err := checkItems("post_payments", payments, maxPostPayments, "商品信息"); err != nil {
		return err
	}
	if err := checkItems("post_discounts", discounts, maxPostDiscounts, ""); err != nil {
		return err
	}
	if *total < 0 {
		return apigw.Errorf(http.StatusBadRequest, CodeInvalidAmount, "total_amount is %d fen; it must be >= 0", *total)
	}
	if sum := ledger.PayScoreTotal(payments, discounts); sum != *total {
		return apigw.Errorf(http.StatusBadRequest, CodeTotalMismatch, "total_amount %d != sum(post_payments.amount) - sum(post_discounts.amount) = %d", *total, sum)
	}
	return nil
}

// checkTime parses a time_range value: yyyyMMddHHmmss, Asia/Shanghai.
func checkTime(field, v string) (time.Time, error) {
	t, err := ledger.ParsePayScoreTime(v)
	if err != nil {
		return time.Time{}, apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "%s %q must be yyyyMMddHHmmss in Asia/Shanghai time", field, v)
	}
	return t, nil
}

// validateCreate checks a create request against every rule WeChat Pay
// applies that can be known locally.
func (h *Handler) validateCreate(in *createRequest) error {
	if err := checkOutOrderNo(in.OutOrderNo); err != nil {
		return err
	}
	if err := checkOpenID(in.OpenID); err != nil {
		return err
	}
	if in.ServiceIntroduction == "" {
		return paramError("service_introduction is required")
	}
	if in.RiskFund == nil || in.RiskFund.Name == "" {
		return paramError("risk_fund with name and amount is required")
	}
	if in.TimeRange == nil || in.TimeRange.StartTime == "" {
		return paramError("time_range.start_time is required")
	}
	if err := checkLengths(limit{"service_introduction", in.ServiceIntroduction, maxServiceIntroduction},
		limit{"attach", in.Attach, maxAttach}, limit{"risk_fund.description", in.RiskFund.Description, maxRiskFundDescription},
		limit{"time_range.start_time_remark", in.TimeRange.StartTimeRemark, maxTimeRemark},
		limit{"time_range.end_time_remark", in.TimeRange.EndTimeRemark, maxTimeRemark}); err != nil {
		return err
	}
	if in.Location != nil {
		if err := checkLengths(limit{"location.start_location", in.Location.StartLocation, maxLocation},
			limit{"location.end_location", in.Location.EndLocation, maxLocation}); err != nil {
			return err
		}
	}
	if err := checkDevice(in.Device); err != nil {
		return err
	}
	if !h.cfg.Mode.AllowsRiskFund(in.RiskFund.Name) {
		return apigw.Errorf(http.StatusBadRequest, CodeRiskFundName, "risk_fund.name %q is not allowed for this service (mode %s): use one of %v",
			in.RiskFund.Name, h.cfg.Mode, h.cfg.Mode.RiskFundNames())
	}
	switch {
	case in.RiskFund.Amount <= 0:
		return apigw.Errorf(http.StatusBadRequest, CodeInvalidAmount, "risk_fund.amount is %d fen; it must be > 0", in.RiskFund.Amount)
	case in.RiskFund.Amount > h.cfg.RiskCap:
		return apigw.Errorf(http.StatusBadRequest, CodeOverRiskCap, "risk_fund.amount %d fen exceeds the service's risk cap of %d fen", in.RiskFund.Amount, h.cfg.RiskCap)
	}
	start, err := checkTime("time_range.start_time", in.TimeRange.StartTime)
	if err != nil {
		return err
	}
	if in.TimeRange.EndTime != "" {
		end, err := checkTime("time_range.end_time", in.TimeRange.EndTime)
		if err != nil {
			return err
		}
		if end.Before(start) {
			return apigw.Errorf(http.StatusBadRequest, CodeInvalidTime, "time_range.end_time %s is before start_time %s", in.TimeRange.EndTime, in.TimeRange.StartTime)
		}
	}
	if err := checkItems("post_payments", in.PostPayments, maxPostPayments, "商品信息"); err != nil {
		return err
	}
	return checkItems("post_discounts", in.PostDiscounts, maxPostDiscounts, "")
}

func checkDevice(d *ledger.PayScoreDevice) error {
	if d == nil {
		return nil
	}
	return checkLengths(limit{"device.start_device_id", d.StartDeviceID, maxDeviceID},
		limit{"device.end_device_id", d.EndDeviceID, maxDeviceID}, limit{"device.materiel_no", d.MaterielNo, maxDeviceID})
}

// checkReason: reason is required, at most 50 characters.
func checkReason(reason string) error {
	if reason == "" {
		return paramError("reason is required (at most %d characters)", maxReason)
	}
	return tooLong("reason", reason, maxReason)
}

// checkNotifyURL: https without query or fragment (plain http only on the
// loopback host, for the local stack and the simulator).
func checkNotifyURL(raw string) error {
	u, err := url.Parse(raw)
	bad := err != nil || u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || len(raw) > maxNotifyURL
	if !bad && u.Scheme != "https" {
		h := u.Hostname()
		bad = u.Scheme != "http" || (h != "127.0.0.1" && h != "localhost" && h != "::1")
	}
	if bad {
		return apigw.Errorf(http.StatusInternalServerError, CodeInvalidNotifyURL,
			"the payscore notify_url %q is not an https URL without query (check NOTIFY_BASE_URL)", raw)
	}
	return nil
}
