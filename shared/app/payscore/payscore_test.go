package payscore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	h, err := NewWithConfig(app.Deps{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Mode: ledger.PayScoreEnjoyFirst, RiskCap: DefaultRiskCap, SweepAge: 4 * time.Hour, SweepLimit: DefaultSweepLimit}
	if got := h.Config(); got != want {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
	if got := New(app.Deps{}).Config(); got != want {
		t.Fatalf("New defaults = %+v, want %+v", got, want)
	}
	custom := Config{Mode: ledger.PayScoreDepositFree, RiskCap: 20000, SweepAge: time.Hour, SweepLimit: 10}
	if h, err := NewWithConfig(app.Deps{}, custom); err != nil || h.Config() != custom {
		t.Fatalf("custom config = %+v, %v; want %+v", h, err, custom)
	}
	for _, bad := range []Config{{Mode: "xianxiang"}, {RiskCap: -1}, {SweepAge: -time.Minute}, {SweepLimit: -1}} {
		if _, err := NewWithConfig(app.Deps{}, bad); !errors.Is(err, ErrConfig) {
			t.Errorf("NewWithConfig(%+v) error = %v, want ErrConfig", bad, err)
		}
	}
	if n := len(New(app.Deps{}).Routes()); n != 12 {
		t.Fatalf("%d routes, want 12 (health + 11 Pay Score routes)", n)
	}
}

func TestEventShapes(t *testing.T) {
	var ev Event
	if err := json.Unmarshal([]byte(`{"job":"payscore-sweep","scheduled_time":"2026-11-23T02:15:00Z"}`), &ev); err != nil || ev.Schedule == nil || ev.Schedule.Job != JobSweep {
		t.Fatalf("schedule input = %+v, %v", ev, err)
	}
	if err := json.Unmarshal([]byte(`{"version":"2.0","routeKey":"GET /payscore/health","rawPath":"/payscore/health"}`), &ev); err != nil || ev.HTTP == nil || ev.Schedule != nil {
		t.Fatalf("HTTP event = %+v, %v", ev, err)
	}
	for _, raw := range []string{`{"job":"payscore-sweep","bill_date":"2026-11-22"}`, `{"detail":{}}`, `[]`} {
		if err := json.Unmarshal([]byte(raw), &ev); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", raw)
		}
	}
	h := New(app.Deps{})
	if _, err := h.Handle(t.Context(), Event{}); !errors.Is(err, ErrUnknownEvent) {
		t.Errorf("Handle(empty) = %v, want ErrUnknownEvent", err)
	}
	for _, in := range []ScheduleInput{{Job: "daily-bills"}, {Job: JobSweep, ScheduledTime: "yesterday"}} {
		if _, err := h.Handle(t.Context(), Event{Schedule: &in}); err == nil {
			t.Errorf("Handle(%+v) succeeded, want an error", in)
		}
	}
}

// TestWechatErrorMapping: WeChat's answers become specific app errors.
func TestWechatErrorMapping(t *testing.T) {
	h := New(app.Deps{})
	tests := []struct {
		ae     *wxpay.APIError
		status int
		code   string
		msg    string
	}{
		{&wxpay.APIError{StatusCode: 403, Code: "NO_AUTH", Message: "商户暂无权限使用此服务"}, 403, CodeNoAuth, "no-confirm permission"},
		{&wxpay.APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "综合评估不通过"}, 422, CodeRiskRejected, "retry later"},
		{&wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR", Message: "mch_id和AppID未绑定"}, 403, CodeAppIDNotBound, "bind it"},
		{&wxpay.APIError{StatusCode: 400, Code: "APPID_MCHID_NOT_MATCH", Message: "appid和mch_id不匹配"}, 403, CodeAppIDNotBound, "bind it"},
		{&wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR", Message: "订单风险金额名称不符合要求"}, 400, CodeRiskFundName, "enjoy_first"},
		{&wxpay.APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "存在未完结订单"}, 409, CodeUserHasOpenOrders, "unfinished"},
		{&wxpay.APIError{StatusCode: 400, Code: "INVALID_REQUEST", Message: "用户未授权或已解除授权"}, 409, CodeAuthorizationActive, "no active authorization"},
		{&wxpay.APIError{StatusCode: 400, Code: "INVALID_ORDER_STATE", Message: "订单状态不正确"}, 409, CodeInvalidOrderState, "current state"},
		{&wxpay.APIError{StatusCode: 400, Code: "ORDER_DONE", Message: "订单已完成"}, 409, CodeInvalidOrderState, "current state"},
		{&wxpay.APIError{StatusCode: 404, Code: "ORDER_NOT_EXIST", Message: "订单不存在"}, 404, CodeOrderNotExist, "does not know"},
		{&wxpay.APIError{StatusCode: 500, Code: "SYSTEM_ERROR", Message: "系统错误"}, 502, CodeUpstream, "retry"},
		{&wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR", Message: "total_amount不一致"}, 400, "PARAM_ERROR", "total_amount不一致"},
	}
	for _, tc := range tests {
		tc.ae.RequestID = "REQ-1"
		err := h.wechatError("create", fmt.Errorf("wxpay: POST /v3/payscore/serviceorder: %w", tc.ae))
		var e *apigw.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) ||
			!strings.Contains(e.Message, "REQ-1") || !strings.Contains(e.Message, tc.ae.Message) {
			t.Errorf("wechatError(%s %s) = %v, want %d %s mentioning %q, WeChat's message and the request id", tc.ae.Code, tc.ae.Message, err, tc.status, tc.code, tc.msg)
		}
	}
	var e *apigw.Error
	if err := h.wechatError("create", wxpay.ErrTransport); !errors.As(err, &e) || e.Status != http.StatusBadGateway {
		t.Errorf("transport failure = %v, want 502", err)
	}
	if !definitive(&wxpay.APIError{StatusCode: 400, Code: "PARAM_ERROR"}) || definitive(&wxpay.APIError{StatusCode: 500}) ||
		definitive(wxpay.ErrResponseSignature) || definitive(wxpay.ErrTransport) {
		t.Error("definitive: only non-retryable WeChat answers settle a call")
	}
}

// TestModeDecidesRiskFund: the configured mode decides which risk_fund names
// pass the local check.
func TestModeDecidesRiskFund(t *testing.T) {
	body := func(name string) *createRequest {
		return &createRequest{OutOrderNo: "PS1", OpenID: "oUser", ServiceIntroduction: "租借",
			RiskFund: &ledger.PayScoreRiskFund{Name: name, Amount: 100}, TimeRange: &ledger.PayScoreTimeRange{StartTime: "20261123100000"}}
	}
	tests := []struct {
		mode ledger.PayScoreMode
		name string
		ok   bool
	}{
		{ledger.PayScoreEnjoyFirst, "ESTIMATE_ORDER_COST", true},
		{ledger.PayScoreEnjoyFirst, "DEPOSIT", false},
		{ledger.PayScoreDepositFree, "DEPOSIT", true},
		{ledger.PayScoreDepositFree, "CASH_DEPOSIT", true},
		{ledger.PayScoreDepositFree, "ESTIMATE_ORDER_COST", false},
	}
	for _, tc := range tests {
		h, err := NewWithConfig(app.Deps{}, Config{Mode: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		err = h.validateCreate(body(tc.name))
		var e *apigw.Error
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &e) || e.Code != CodeRiskFundName) {
			t.Errorf("mode %s, risk_fund %s: %v, want ok=%v", tc.mode, tc.name, err, tc.ok)
		}
	}
	h, _ := NewWithConfig(app.Deps{}, Config{RiskCap: 100})
	b := body("ESTIMATE_ORDER_COST")
	b.RiskFund.Amount = 101
	var e *apigw.Error
	if err := h.validateCreate(b); !errors.As(err, &e) || e.Code != CodeOverRiskCap {
		t.Errorf("risk_fund 101 with cap 100: %v, want %s", err, CodeOverRiskCap)
	}
}

func TestNotifyURLRule(t *testing.T) {
	tests := map[string]bool{
		"https://api.example.com/notify/payscore":         true,
		"http://127.0.0.1:8080/notify/payscore":           true,
		"http://localhost/notify/payscore":                true,
		"http://api.example.com/notify/payscore":          false,
		"https://api.example.com/notify/payscore?stage=1": false,
		"https://api.example.com/notify/payscore#x":       false,
		"https://api.example.com/notify/payscore?":        false,
		"/notify/payscore":                                false,
		"https://" + strings.Repeat("a", 250) + ".com/n":  false,
	}
	for u, ok := range tests {
		if err := checkNotifyURL(u); (err == nil) != ok {
			t.Errorf("checkNotifyURL(%q) = %v, want ok=%v", u, err, ok)
		}
	}
}
