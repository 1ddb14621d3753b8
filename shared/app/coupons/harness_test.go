package coupons_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// env is the coupons handler on DynamoDB Local, talking to the simulator
// over signed HTTP.
type env struct {
	*lambdatest.Env
	sim    *wxpaysim.Sim
	simURL string
	h      *coupons.Handler
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := lambdatest.NewEnv(t)
	sim, err := wxpaysim.New(wxpaysim.Config{Platform: e.Platform, TimeScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(e.Merchant, wxpaysim.ModeMixed, "")); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	deps := e.Deps
	deps.WeChat = wxpay.New(wxpay.Config{Credentials: e.Secrets, BaseURL: srv.URL,
		Retry: wxpay.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}})
	deps.NotifyBaseURL = "https://api.example.com/notify"
	return &env{Env: e, sim: sim, simURL: srv.URL, h: coupons.New(deps)}
}

// answer is a handler response.
type answer struct {
	status int
	body   []byte
	header map[string]string
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %s is not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

func (a answer) str(t *testing.T, field string) string {
	t.Helper()
	s, _ := a.json(t)[field].(string)
	return s
}

func (a answer) code() string {
	var b apigw.ErrorBody
	_ = json.Unmarshal(a.body, &b)
	return b.Code
}

// do invokes the handler with an HTTP API v2 event; body is marshalled
// unless it is a string (sent as is).
func (e *env) do(t *testing.T, method, path string, query map[string]string, body any) answer {
	t.Helper()
	raw := ""
	switch b := body.(type) {
	case nil:
	case string:
		raw = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(j)
	}
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: path, QueryStringParameters: query, Body: raw,
		RequestContext: events.APIGatewayV2HTTPRequestContext{DomainName: "api.example.com", Stage: "$default",
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
	resp, err := e.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("%s %s: Go error %v", method, path, err)
	}
	return answer{status: resp.StatusCode, body: []byte(resp.Body), header: resp.Headers}
}

// must fails unless the answer has the status.
func must(t *testing.T, what string, a answer, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: got %d %s, want %d", what, a.status, a.body, status)
	}
	return a
}

// wxRequests counts the simulator's requests whose path starts with prefix.
func (e *env) wxRequests(prefix string) []wxpaysim.RequestRecord {
	var out []wxpaysim.RequestRecord
	for _, r := range e.sim.Requests() {
		if len(r.Path) >= len(prefix) && r.Path[:len(prefix)] == prefix {
			out = append(out, r)
		}
	}
	return out
}

var cst = time.FixedZone("CST", 8*3600)

func wxTime(t time.Time) string { return t.In(cst).Format(time.RFC3339) }

// stockBody is a valid create-stock body of our API (no out_request_no,
// no belong_merchant: both are filled in).
func stockBody(now time.Time, mode, notifyAppID string) map[string]any {
	b := map[string]any{
		"stock_name": "8月1日活动券", "comment": "活动使用", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": wxTime(now.Add(-time.Hour)),
				"available_end_time": wxTime(now.Add(30 * 24 * time.Hour)), "available_day_after_receive": 3, "wait_days_after_receive": 0},
			"fixed_normal_coupon": map[string]any{"discount_amount": 500, "transaction_minimum": 1000},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule":      map[string]any{"max_coupons": 10, "max_coupons_per_user": 2, "prevent_api_abuse": false},
		"display_pattern_info": map[string]any{"description": "全场通用", "background_color": "Color020", "merchant_name": "微信支付"},
	}
	if notifyAppID != "" {
		b["notify_config"] = map[string]any{"notify_appid": notifyAppID}
	}
	return b
}

// activityBody is a valid create-activity body of our API over stocks.
func activityBody(now time.Time, merchants []string, stocks ...string) map[string]any {
	var awards []map[string]any
	for _, s := range stocks {
		awards = append(awards, map[string]any{"stock_id": s, "original_image_url": "https://wxpaylogo.qpic.cn/award.png",
			"thumbnail_url": "https://wxpaylogo.qpic.cn/thumb.png"})
	}
	content := "SINGLE_COUPON"
	if len(stocks) > 1 {
		content = "GIFT_PACKAGE"
	}
	return map[string]any{
		"activity_base_info": map[string]any{"activity_name": "满100送券", "activity_second_title": "下单即送",
			"merchant_logo_url": "https://wxpaylogo.qpic.cn/logo.png", "background_color": "Color020",
			"begin_time": wxTime(now), "end_time": wxTime(now.Add(7 * 24 * time.Hour)), "delivery_purpose": "OFF_LINE_PAY"},
		"award_send_rule": map[string]any{"transaction_amount_minimum": 10000, "send_content": content, "award_list": awards,
			"merchant_id_list": merchants},
		"advanced_setting": map[string]any{"delivery_user_category": "DELIVERY_ALL_PERSON", "goods_tags": []string{"GIFT"}},
	}
}
