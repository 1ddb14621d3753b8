package coupons_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/coupons"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// sink is a notify_url that acknowledges everything (COUPON.SEND is
// applied by the notify function, tested end to end in internal/e2e).
func sink(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	return srv.URL + "/notify/coupons"
}

// createStock creates a stock through the handler and returns its id.
func (e *env) createStock(t *testing.T, body map[string]any) string {
	t.Helper()
	a := must(t, "create stock", e.do(t, http.MethodPost, "/coupons/stocks", nil, body), http.StatusOK)
	return a.str(t, "stock_id")
}

// bodyField decodes one field of a recorded request body.
func bodyField(t *testing.T, r wxpaysim.RequestRecord, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request %s body %s: %v", r.Path, r.Body, err)
	}
	s, _ := m[field].(string)
	return s
}

func TestStockFlowAgainstSimulator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	body := stockBody(now, "MERCHANT_UPLOAD", e.Merchant.AppID)

	a := must(t, "create", e.do(t, http.MethodPost, "/coupons/stocks", nil, body), http.StatusOK)
	id, no := a.str(t, "stock_id"), a.str(t, "out_request_no")
	if len(no) != ledger.RequestNoLen || !strings.HasPrefix(no, e.Merchant.MchID+ledger.Day(now)[:4]) {
		t.Fatalf("generated out_request_no %q, want %d characters starting with mchid+date", no, ledger.RequestNoLen)
	}
	creates := e.wxRequests("/v3/marketing/busifavor/stocks")
	if len(creates) != 1 || bodyField(t, creates[0], "out_request_no") != no || bodyField(t, creates[0], "belong_merchant") != e.Merchant.MchID {
		t.Fatalf("WeChat saw %d creates (%v), want 1 carrying out_request_no %s and belong_merchant", len(creates), creates, no)
	}
	var row ledger.Stock
	if err := e.Store.Get(ctx, ledger.StockKey(id), &row); err != nil {
		t.Fatal(err)
	}
	if row.State != ledger.StockCreated || row.OutRequestNo != no || row.MaxCoupons != 10 || row.CouponCodeMode != "MERCHANT_UPLOAD" ||
		!strings.Contains(row.RequestJSON, no) {
		t.Fatalf("ledger stock = %+v", row)
	}
	var rec ledger.CouponRequest
	if err := e.Store.Get(ctx, ledger.CouponRequestKey("create_stock", no), &rec); err != nil || rec.State != ledger.RequestDone {
		t.Fatalf("request record = %+v (%v), want DONE", rec, err)
	}

	// The same request again: the stored answer, no second stock.
	again := must(t, "create replay", e.do(t, http.MethodPost, "/coupons/stocks", nil, body), http.StatusOK)
	if again.str(t, "stock_id") != id || again.header["x-idempotent-replay"] != "true" || len(e.wxRequests("/v3/marketing/busifavor/stocks")) != 1 {
		t.Fatalf("replay = %s %v, want stock %s from the record with no WeChat call", again.body, again.header, id)
	}
	reused := set(body, "stock_name", "另一个批次")
	reused["out_request_no"] = no
	if a := e.do(t, http.MethodPost, "/coupons/stocks", nil, reused); a.status != http.StatusConflict || a.code() != coupons.CodeRequestNoReused {
		t.Fatalf("same out_request_no, other body: %d %s, want 409 %s", a.status, a.body, coupons.CodeRequestNoReused)
	}

	// Query refreshes the ledger.
	st := must(t, "get", e.do(t, http.MethodGet, "/coupons/stocks/"+id, nil, nil), http.StatusOK)
	if st.str(t, "stock_state") != "RUNNING" {
		t.Fatalf("stock = %s", st.body)
	}
	if err := e.Store.Get(ctx, ledger.StockKey(id), &row); err != nil || row.State != "RUNNING" || row.SyncedAt == "" {
		t.Fatalf("ledger after query = %+v (%v), want RUNNING synced", row, err)
	}
	if a := e.do(t, http.MethodGet, "/coupons/stocks/1299999999", nil, nil); a.status != http.StatusNotFound || a.code() != "RESOURCE_NOT_EXISTS" {
		t.Fatalf("unknown stock: %d %s, want WeChat's 404", a.status, a.body)
	}

	// Modify.
	must(t, "modify", e.do(t, http.MethodPatch, "/coupons/stocks/"+id, nil, map[string]any{"stock_name": "改名券"}), http.StatusOK)
	if st := must(t, "get", e.do(t, http.MethodGet, "/coupons/stocks/"+id, nil, nil), http.StatusOK); st.str(t, "stock_name") != "改名券" {
		t.Fatalf("after modify: %s", st.body)
	}

	// Upload, list, detail, delete.
	up := must(t, "upload", e.do(t, http.MethodPost, "/coupons/stocks/"+id+"/codes", nil, map[string]any{"coupon_code_list": []string{"CODE01", "CODE02", "CODE03"}}), http.StatusOK)
	if up.json(t)["success_count"] != 3.0 || up.str(t, "upload_request_no") == "" {
		t.Fatalf("upload = %s", up.body)
	}
	if err := e.Store.Get(ctx, ledger.StockKey(id), &row); err != nil || row.UploadedCodes != 3 {
		t.Fatalf("uploaded_codes = %d (%v), want 3", row.UploadedCodes, err)
	}
	list := must(t, "list codes", e.do(t, http.MethodGet, "/coupons/stocks/"+id+"/codes", map[string]string{"limit": "2", "status": "AVAILABLE"}, nil), http.StatusOK)
	if list.json(t)["total_count"] != 3.0 || len(list.json(t)["data"].([]any)) != 2 {
		t.Fatalf("list = %s", list.body)
	}
	must(t, "code detail", e.do(t, http.MethodGet, "/coupons/stocks/"+id+"/codes/CODE02", nil, nil), http.StatusOK)
	d1 := must(t, "delete", e.do(t, http.MethodDelete, "/coupons/stocks/"+id+"/codes/CODE03", nil, nil), http.StatusOK)
	dno := d1.str(t, "delete_request_no")
	dels := e.wxRequests("/v3/marketing/busifavor/stocks/" + id + "/couponcodes/CODE03?delete_request_no=" + dno)
	if len(dels) != 1 {
		t.Fatalf("WeChat saw %d deletes with delete_request_no %s, want 1", len(dels), dno)
	}
	d2 := must(t, "delete replay", e.do(t, http.MethodDelete, "/coupons/stocks/"+id+"/codes/CODE03", map[string]string{"delete_request_no": dno}, nil), http.StatusOK)
	if d2.header["x-idempotent-replay"] != "true" || len(e.wxRequests("/v3/marketing/busifavor/stocks/"+id+"/couponcodes/CODE03")) != 1 {
		t.Fatalf("delete replay = %s %v, want the stored answer without a call", d2.body, d2.header)
	}
	if err := e.Store.Get(ctx, ledger.StockKey(id), &row); err != nil || row.UploadedCodes != 2 {
		t.Fatalf("uploaded_codes after delete = %d (%v), want 2", row.UploadedCodes, err)
	}

	// Budget: current comes from the ledger.
	b := must(t, "budget", e.do(t, http.MethodPost, "/coupons/stocks/"+id+"/budget", nil, map[string]any{"target_max_coupons": 20}), http.StatusOK)
	if b.json(t)["max_coupons"] != 20.0 {
		t.Fatalf("budget = %s", b.body)
	}
	if err := e.Store.Get(ctx, ledger.StockKey(id), &row); err != nil || row.MaxCoupons != 20 {
		t.Fatalf("ledger max_coupons = %d (%v), want 20", row.MaxCoupons, err)
	}
	if a := e.do(t, http.MethodPost, "/coupons/stocks/"+id+"/budget", nil, map[string]any{"target_max_coupons": 30, "current_max_coupons": 10}); a.status != http.StatusBadRequest || a.code() != "INVALID_REQUEST" {
		t.Fatalf("stale current: %d %s, want WeChat's 400 INVALID_REQUEST", a.status, a.body)
	}
}

// history lists a coupon's history actions.
func (e *env) history(t *testing.T, stockID, code string) []string {
	t.Helper()
	var evs []ledger.CouponEvent
	if _, err := e.Store.Query(context.Background(), store.Query{PK: ledger.CouponKey(stockID, code).PK, SKPrefix: ledger.CouponHistoryPrefix}, &evs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Action)
	}
	return out
}

func (e *env) coupon(t *testing.T, stockID, code string) ledger.Coupon {
	t.Helper()
	var c ledger.Coupon
	if err := e.Store.Get(context.Background(), ledger.CouponKey(stockID, code), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCouponFlowAgainstSimulator(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	cb := must(t, "default callback", e.do(t, http.MethodPut, "/coupons/callback", nil, nil), http.StatusOK)
	if cb.str(t, "notify_url") != "https://api.example.com/notify/coupons" {
		t.Fatalf("default callback = %s, want the notify function's coupons channel", cb.body)
	}
	url := sink(t)
	must(t, "callback", e.do(t, http.MethodPut, "/coupons/callback", nil, map[string]any{"notify_url": url}), http.StatusOK)
	if g := must(t, "get callback", e.do(t, http.MethodGet, "/coupons/callback", nil, nil), http.StatusOK); g.str(t, "notify_url") != url {
		t.Fatalf("callback = %s, want %s", g.body, url)
	}
	id := e.createStock(t, stockBody(now, "WECHATPAY_MODE", e.Merchant.AppID))
	const openid = "oFlowUser"

	s := must(t, "send", e.do(t, http.MethodPost, "/coupons/send", nil, map[string]any{"stock_id": id, "openid": openid}), http.StatusOK)
	code := s.str(t, "coupon_code")
	if c := e.coupon(t, id, code); c.State != ledger.CouponSended || c.OpenID != openid || c.SendRequestNo != s.str(t, "out_request_no") {
		t.Fatalf("ledger after send = %+v", c)
	}
	f := must(t, "filter", e.do(t, http.MethodGet, "/coupons/users/"+openid+"/coupons", map[string]string{"stock_id": id}, nil), http.StatusOK)
	if f.json(t)["total_count"] != 1.0 {
		t.Fatalf("filter = %s", f.body)
	}
	uc := must(t, "user coupon", e.do(t, http.MethodGet, "/coupons/users/"+openid+"/coupons/"+code, nil, nil), http.StatusOK)
	if uc.str(t, "coupon_state") != "SENDED" {
		t.Fatalf("user coupon = %s", uc.body)
	}
	must(t, "associate", e.do(t, http.MethodPost, "/coupons/associate", nil, map[string]any{"stock_id": id, "coupon_code": code, "out_trade_no": "ORDER20260001"}), http.StatusOK)
	if c := e.coupon(t, id, code); c.AssociateOutTradeNo != "ORDER20260001" {
		t.Fatalf("associate not recorded: %+v", c)
	}
	must(t, "disassociate", e.do(t, http.MethodPost, "/coupons/disassociate", nil, map[string]any{"stock_id": id, "coupon_code": code, "out_trade_no": "ORDER20260001"}), http.StatusOK)

	use := map[string]any{"stock_id": id, "coupon_code": code, "openid": openid, "out_trade_no": "ORDER20260001"}
	u := must(t, "use", e.do(t, http.MethodPost, "/coupons/use", nil, use), http.StatusOK)
	c := e.coupon(t, id, code)
	if c.State != ledger.CouponUsed || c.UseRequestNo != u.str(t, "use_request_no") || c.UseOutTradeNo != "ORDER20260001" || c.AssociateOutTradeNo != "" {
		t.Fatalf("ledger after use = %+v, answer %s", c, u.body)
	}
	before := len(e.wxRequests("/v3/marketing/busifavor/coupons/use"))
	// A late copy of the same request (no use_request_no, same content)
	// is the same request: its answer is replayed.
	if a := e.do(t, http.MethodPost, "/coupons/use", nil, use); a.status != http.StatusOK || a.header["x-idempotent-replay"] != "true" ||
		a.str(t, "use_request_no") != u.str(t, "use_request_no") {
		t.Fatalf("the same use again: %d %v %s, want the replay of %s", a.status, a.header, a.body, u.body)
	}
	// A different use of the used coupon is refused locally.
	other := map[string]any{"stock_id": id, "coupon_code": code, "openid": openid, "out_trade_no": "ORDER20260002"}
	if a := e.do(t, http.MethodPost, "/coupons/use", nil, other); a.status != http.StatusConflict || a.code() != coupons.CodeCouponState {
		t.Fatalf("another use: %d %s, want 409 %s", a.status, a.body, coupons.CodeCouponState)
	}
	if n := len(e.wxRequests("/v3/marketing/busifavor/coupons/use")); n != before {
		t.Fatalf("the second and third use reached WeChat Pay (%d calls, want %d)", n, before)
	}
	r := must(t, "return", e.do(t, http.MethodPost, "/coupons/return", nil, map[string]any{"stock_id": id, "coupon_code": code}), http.StatusOK)
	if c := e.coupon(t, id, code); c.State != ledger.CouponSended || c.ReturnRequestNo != r.str(t, "return_request_no") || c.ReturnTime == "" {
		t.Fatalf("ledger after return = %+v", c)
	}
	// The coupon is usable again: a new use is a new intent with a new number.
	u2 := must(t, "use after return", e.do(t, http.MethodPost, "/coupons/use", nil, use), http.StatusOK)
	if u2.str(t, "use_request_no") == u.str(t, "use_request_no") {
		t.Fatalf("the use after a return reused use_request_no %s", u.str(t, "use_request_no"))
	}
	must(t, "return again", e.do(t, http.MethodPost, "/coupons/return", nil, map[string]any{"stock_id": id, "coupon_code": code}), http.StatusOK)
	must(t, "deactivate", e.do(t, http.MethodPost, "/coupons/deactivate", nil, map[string]any{"stock_id": id, "coupon_code": code, "deactivate_reason": "活动取消"}), http.StatusOK)
	if c := e.coupon(t, id, code); c.State != ledger.CouponDeactivated || c.DeactivateReason != "活动取消" {
		t.Fatalf("ledger after deactivate = %+v", c)
	}
	if uc := must(t, "user coupon", e.do(t, http.MethodGet, "/coupons/users/"+openid+"/coupons/"+code, nil, nil), http.StatusOK); uc.str(t, "coupon_state") != "DEACTIVATED" {
		t.Fatalf("WeChat's coupon after deactivate = %s", uc.body)
	}
	want := map[string]int{"send": 1, "associate": 1, "disassociate": 1, "use": 2, "return": 2, "deactivate": 1}
	got := map[string]int{}
	for _, a := range e.history(t, id, code) {
		got[a]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("history = %v, want %v", got, want)
	}

	// WeChat's business error: the record is FAILED, the answer WeChat's.
	a := e.do(t, http.MethodPost, "/coupons/use", nil, map[string]any{"stock_id": id, "coupon_code": "9999999999", "use_request_no": "USEUNKNOWN1"})
	if a.status != http.StatusNotFound || a.code() != "RESOURCE_NOT_EXISTS" {
		t.Fatalf("use of an unknown coupon: %d %s, want WeChat's 404", a.status, a.body)
	}
	var rec ledger.CouponRequest
	if err := e.Store.Get(context.Background(), ledger.CouponRequestKey("use", "USEUNKNOWN1"), &rec); err != nil || rec.State != ledger.RequestFailed || rec.ErrorCode != "RESOURCE_NOT_EXISTS" {
		t.Fatalf("request record = %+v (%v), want FAILED with WeChat's code", rec, err)
	}
	// A caller's number reused for another coupon is refused before any call.
	before = len(e.sim.Requests())
	if a := e.do(t, http.MethodPost, "/coupons/use", nil, map[string]any{"stock_id": id, "coupon_code": "8888888888", "use_request_no": "USEUNKNOWN1"}); a.status != http.StatusConflict || a.code() != coupons.CodeRequestNoReused {
		t.Fatalf("use_request_no reused: %d %s, want 409 %s", a.status, a.body, coupons.CodeRequestNoReused)
	}
	if n := len(e.sim.Requests()); n != before {
		t.Fatalf("a reused number reached WeChat Pay")
	}
}

// TestUseRetryReusesRequestNo: a use whose outcome is unknown keeps its
// use_request_no (and use_time); the retry sends exactly the same call and
// the coupon is used once.
func TestUseRetryReusesRequestNo(t *testing.T) {
	const usePath = "/v3/marketing/busifavor/coupons/use"
	tests := []struct {
		name  string
		arm   func(e *env) // makes every attempt of the first route call fail
		first int          // status of the first route call
	}{
		{"500 before WeChat acted", func(e *env) {
			e.sim.SetFault(wxpaysim.Fault{PathPrefix: usePath, Kind: wxpaysim.KindError, Status: 500, Count: 3})
		}, http.StatusBadGateway},
		{"answer lost after WeChat acted", func(e *env) {
			if err := e.sim.LoseAnswers(e.Merchant.MchID, usePath, 3); err != nil {
				panic(err)
			}
		}, http.StatusBadGateway},
		{"one 500, retried inside the call", func(e *env) {
			e.sim.SetFault(wxpaysim.Fault{PathPrefix: usePath, Kind: wxpaysim.KindError, Status: 500, Count: 1})
		}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.createStock(t, stockBody(time.Now(), "WECHATPAY_MODE", ""))
			code := must(t, "send", e.do(t, http.MethodPost, "/coupons/send", nil, map[string]any{"stock_id": id, "openid": "oRetry"}), http.StatusOK).str(t, "coupon_code")
			use := map[string]any{"stock_id": id, "coupon_code": code}
			tc.arm(e)
			first := e.do(t, http.MethodPost, "/coupons/use", nil, use)
			if first.status != tc.first {
				t.Fatalf("first use: %d %s, want %d", first.status, first.body, tc.first)
			}
			final := first
			if first.status != http.StatusOK {
				if first.code() != coupons.CodeOutcomeUnknown {
					t.Fatalf("first use code %s, want %s", first.code(), coupons.CodeOutcomeUnknown)
				}
				final = must(t, "retry", e.do(t, http.MethodPost, "/coupons/use", nil, use), http.StatusOK)
			}
			no := final.str(t, "use_request_no")
			reqs := e.wxRequests(usePath)
			if len(reqs) < 2 {
				t.Fatalf("WeChat saw %d use requests, want the failed attempts and the retry", len(reqs))
			}
			for i, r := range reqs {
				if bodyField(t, r, "use_request_no") != no || string(r.Body) != string(reqs[0].Body) {
					t.Fatalf("use request %d = %s, want the first body %s with use_request_no %s", i, r.Body, reqs[0].Body, no)
				}
			}
			if !strings.Contains(string(first.body), no) && first.status != http.StatusOK {
				t.Fatalf("the unknown-outcome answer %s does not name use_request_no %s", first.body, no)
			}
			uc := must(t, "user coupon", e.do(t, http.MethodGet, "/coupons/users/oRetry/coupons/"+code, nil, nil), http.StatusOK)
			if uc.str(t, "coupon_state") != "USED" || uc.str(t, "use_request_no") != no {
				t.Fatalf("WeChat's coupon = %s, want USED by %s", uc.body, no)
			}
			if c := e.coupon(t, id, code); c.State != ledger.CouponUsed || c.UseRequestNo != no || len(e.history(t, id, code)) != 2 {
				t.Fatalf("ledger = %+v history %v, want USED by %s once", c, e.history(t, id, code), no)
			}
			n := len(e.wxRequests(usePath))
			if a := e.do(t, http.MethodPost, "/coupons/use", nil, use); a.status != http.StatusOK || a.str(t, "use_request_no") != no || len(e.wxRequests(usePath)) != n {
				t.Fatalf("the same use a third time: %d %s with %d more calls, want the replay of %s and no call", a.status, a.body, len(e.wxRequests(usePath))-n, no)
			}
			other := map[string]any{"stock_id": id, "coupon_code": code, "out_trade_no": "ORDERRETRY2"}
			if a := e.do(t, http.MethodPost, "/coupons/use", nil, other); a.status != http.StatusConflict || len(e.wxRequests(usePath)) != n {
				t.Fatalf("another use: %d %s with %d more calls, want a local 409", a.status, a.body, len(e.wxRequests(usePath))-n)
			}
		})
	}
}

// signVector is one vector of testdata/plugin-sign.txt.
type signVector struct {
	key, merchant, sign string
	params              []coupons.PluginParam
}

// signVectors reads testdata/plugin-sign.txt (openssl-computed vectors).
func signVectors(t *testing.T) []signVector {
	t.Helper()
	fh, err := os.Open("testdata/plugin-sign.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var out []signVector
	var cur signVector
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "key":
			cur = signVector{key: v}
		case "merchant":
			cur.merchant = v
		case "coupon":
			p := strings.Split(v, ";")
			cur.params = append(cur.params, coupons.PluginParam{StockID: p[0], OutRequestNo: p[1], CouponCode: p[2], CustomizeSendTime: p[3], CreateCouponMerchant: p[4]})
		case "sign":
			cur.sign = v
			out = append(out, cur)
		}
	}
	if len(out) == 0 {
		t.Fatal("no vectors in testdata/plugin-sign.txt")
	}
	return out
}

func TestPluginSignKnownAnswer(t *testing.T) {
	for i, v := range signVectors(t) {
		if got := coupons.PluginSign([]byte(v.key), v.merchant, v.params); got != v.sign {
			t.Errorf("vector %d: PluginSign(%s, %+v) = %s, want %s (openssl)", i, v.merchant, v.params, got, v.sign)
		}
	}
}

// TestPluginSignRoute: the route numbers and signs the coupons with the
// merchant's APIv2 key (checked with an HMAC computed here), makes no
// WeChat call, and the simulated plugin accepts the claim.
func TestPluginSignRoute(t *testing.T) {
	e := newEnv(t)
	id := e.createStock(t, stockBody(time.Now(), "WECHATPAY_MODE", e.Merchant.AppID))
	before := len(e.sim.Requests())
	req := map[string]any{"send_coupon_params": []map[string]any{{"stock_id": id}, {"stock_id": id, "out_request_no": "MYREQ0001"}}, "openid": "oPlugin"}
	a := must(t, "sign", e.do(t, http.MethodPost, "/coupons/plugin-sign", nil, req), http.StatusOK)
	var ans struct {
		PluginAppID        string                `json:"plugin_appid"`
		SendCouponParams   []coupons.PluginParam `json:"send_coupon_params"`
		SendCouponMerchant string                `json:"send_coupon_merchant"`
		Sign               string                `json:"sign"`
	}
	if err := json.Unmarshal(a.body, &ans); err != nil {
		t.Fatal(err)
	}
	gen := ans.SendCouponParams[0].OutRequestNo
	if ans.PluginAppID != coupons.PluginAppID || len(gen) != ledger.RequestNoLen || ans.SendCouponParams[1].OutRequestNo != "MYREQ0001" || ans.SendCouponMerchant != e.Merchant.MchID {
		t.Fatalf("answer = %s", a.body)
	}
	signString := fmt.Sprintf("out_request_no0=%s&out_request_no1=MYREQ0001&send_coupon_merchant=%s&stock_id0=%s&stock_id1=%s", gen, e.Merchant.MchID, id, id)
	mac := hmac.New(sha256.New, []byte(e.Merchant.APIv2Key))
	mac.Write([]byte(signString + "&key=" + e.Merchant.APIv2Key))
	if want := strings.ToUpper(hex.EncodeToString(mac.Sum(nil))); ans.Sign != want {
		t.Fatalf("sign = %s, want HMAC-SHA256(%q) = %s", ans.Sign, signString, want)
	}
	if n := len(e.sim.Requests()); n != before {
		t.Fatalf("plugin-sign made %d WeChat calls, want 0", n-before)
	}
	if strings.Contains(string(a.body), e.Merchant.APIv2Key) {
		t.Fatal("the answer carries the APIv2 key")
	}
	if again := must(t, "sign again", e.do(t, http.MethodPost, "/coupons/plugin-sign", nil, req), http.StatusOK); !strings.Contains(string(again.body), gen) {
		t.Fatalf("the same request for the same user got %s, want out_request_no %s again", again.body, gen)
	}
	var rec ledger.CouponRequest
	if err := e.Store.Get(context.Background(), ledger.CouponRequestKey("plugin_send", gen), &rec); err != nil || rec.Scope != id {
		t.Fatalf("plugin out_request_no record = %+v (%v)", rec, err)
	}

	if err := e.sim.SetAPIv2Key(e.Merchant.MchID, e.Merchant.APIv2Key); err != nil {
		t.Fatal(err)
	}
	params := make([]wxpaysim.PluginCouponParam, len(ans.SendCouponParams))
	for i, p := range ans.SendCouponParams {
		params[i] = wxpaysim.PluginCouponParam{StockID: p.StockID, OutRequestNo: p.OutRequestNo}
	}
	res, err := e.sim.ClaimCoupons(context.Background(), wxpaysim.CouponClaim{OpenID: "oPlugin", AppID: e.Merchant.AppID,
		SendCouponMerchant: ans.SendCouponMerchant, SendCouponParams: params, Sign: ans.Sign})
	if err != nil || len(res.Results) != 2 || res.Results[0].Code != "SUCCESS" || res.Results[1].Code != "SUCCESS" {
		t.Fatalf("plugin claim with our sign = %+v (%v), want 2 coupons", res, err)
	}
}

func TestPayGiftFlowAgainstSimulator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	must(t, "callback", e.do(t, http.MethodPut, "/coupons/callback", nil, map[string]any{"notify_url": sink(t)}), http.StatusOK)
	stock := e.createStock(t, stockBody(now.Add(-time.Minute), "WECHATPAY_MODE", e.Merchant.AppID))
	body := activityBody(now, []string{e.Merchant.MchID}, stock)
	c := must(t, "create", e.do(t, http.MethodPost, "/paygift/activities", nil, body), http.StatusOK)
	act := c.str(t, "activity_id")
	if again := must(t, "create replay", e.do(t, http.MethodPost, "/paygift/activities", nil, body), http.StatusOK); again.str(t, "activity_id") != act ||
		len(e.wxRequests("/v3/marketing/paygiftactivity/unique-threshold-activity")) != 1 {
		t.Fatalf("create replay = %s, want activity %s without a second call", again.body, act)
	}
	var row ledger.Activity
	if err := e.Store.Get(ctx, ledger.ActivityKey(act), &row); err != nil || row.Status != "CREATE_ACT_STATUS" || row.OutRequestNo != c.str(t, "out_request_no") ||
		len(row.StockIDs) != 1 || row.Minimum != 10000 {
		t.Fatalf("ledger activity = %+v (%v)", row, err)
	}
	list := must(t, "list", e.do(t, http.MethodGet, "/paygift/activities", nil, nil), http.StatusOK)
	if list.json(t)["total_count"] != 1.0 {
		t.Fatalf("list = %s", list.body)
	}
	if d := must(t, "detail", e.do(t, http.MethodGet, "/paygift/activities/"+act, nil, nil), http.StatusOK); d.str(t, "activity_status") != "ONGOING_ACT_STATUS" {
		t.Fatalf("detail = %s", d.body)
	}
	if err := e.Store.Get(ctx, ledger.ActivityKey(act), &row); err != nil || row.Status != "ONGOING_ACT_STATUS" {
		t.Fatalf("ledger after detail = %+v (%v), want ONGOING", row, err)
	}
	if g := must(t, "goods", e.do(t, http.MethodGet, "/paygift/activities/"+act+"/goods", nil, nil), http.StatusOK); g.json(t)["total_count"] != 1.0 {
		t.Fatalf("goods = %s", g.body)
	}
	add := must(t, "add", e.do(t, http.MethodPost, "/paygift/activities/"+act+"/merchants/add", nil, map[string]any{"merchant_id_list": []string{"1900000002"}}), http.StatusOK)
	if add.str(t, "add_request_no") == "" {
		t.Fatalf("add = %s", add.body)
	}
	if again := must(t, "add replay", e.do(t, http.MethodPost, "/paygift/activities/"+act+"/merchants/add", nil, map[string]any{"merchant_id_list": []string{"1900000002"}}), http.StatusOK); again.str(t, "add_request_no") != add.str(t, "add_request_no") ||
		len(e.wxRequests("/v3/marketing/paygiftactivity/activities/"+act+"/merchants/add")) != 1 {
		t.Fatalf("add replay = %s, want the first answer without a call", again.body)
	}
	if m := must(t, "merchants", e.do(t, http.MethodGet, "/paygift/activities/"+act+"/merchants", nil, nil), http.StatusOK); m.json(t)["total_count"] != 2.0 {
		t.Fatalf("merchants = %s", m.body)
	}
	if err := e.Store.Get(ctx, ledger.ActivityKey(act), &row); err != nil || len(row.Merchants) != 2 {
		t.Fatalf("ledger merchants = %v (%v), want 2", row.Merchants, err)
	}
	must(t, "delete", e.do(t, http.MethodPost, "/paygift/activities/"+act+"/merchants/delete", nil, map[string]any{"merchant_id_list": []string{"1900000002"}}), http.StatusOK)
	if err := e.Store.Get(ctx, ledger.ActivityKey(act), &row); err != nil || len(row.Merchants) != 1 || row.Merchants[0] != e.Merchant.MchID {
		t.Fatalf("ledger merchants after delete = %v (%v)", row.Merchants, err)
	}

	// A qualifying payment (the simulated user pays) earns the coupon.
	client := wxpay.New(wxpay.Config{Credentials: e.Secrets, BaseURL: e.simURL})
	if _, err := client.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: "/v3/pay/transactions/native", Body: map[string]any{
		"appid": e.Merchant.AppID, "mchid": e.Merchant.MchID, "description": "满额送", "out_trade_no": "PGFLOW0001", "goods_tag": "GIFT",
		"notify_url": sink(t), "amount": map[string]any{"total": 12000, "currency": "CNY"}}}, nil); err != nil {
		t.Fatal(err)
	}
	paid, err := e.sim.PayOrder(ctx, wxpaysim.Payment{MchID: e.Merchant.MchID, OutTradeNo: "PGFLOW0001", OpenID: "oGiftUser"})
	if err != nil {
		t.Fatal(err)
	}
	if sends := e.sim.PayGiftSends(e.Merchant.MchID); len(sends) != 1 || sends[0].TransactionID != paid.TransactionID || sends[0].CouponCode == "" {
		t.Fatalf("pay-gift sends = %+v, want one coupon for %s", sends, paid.TransactionID)
	}

	tm := must(t, "terminate", e.do(t, http.MethodPost, "/paygift/activities/"+act+"/terminate", nil, nil), http.StatusOK)
	if err := e.Store.Get(ctx, ledger.ActivityKey(act), &row); err != nil || row.Status != "TERMINATE_ACT_STATUS" || row.TerminateTime != tm.str(t, "terminate_time") {
		t.Fatalf("ledger after terminate = %+v (%v)", row, err)
	}
	if a := e.do(t, http.MethodPost, "/paygift/activities/"+act+"/terminate", nil, nil); a.status != http.StatusBadRequest || a.code() != "INVALID_REQUEST" {
		t.Fatalf("terminate twice: %d %s, want WeChat's 400", a.status, a.body)
	}
}
