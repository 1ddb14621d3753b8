package wxpaysim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

// psFixture is a simulator with a merchant, a Pay Score service and a
// notification receiver.
type psFixture struct {
	*fixture
	rc  *receiver
	svc string
}

func newPayScoreFixture(t *testing.T) *psFixture {
	t.Helper()
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	ps := &psFixture{fixture: f, rc: newReceiver(t, f, nil), svc: f.m.ServiceID}
	// Authorization callbacks without a pre-authorization go to the
	// service_notify_url.
	if err := f.sim.SetPayScoreService(f.m.MchID, wxpaysim.PayScoreService{ServiceID: ps.svc, NotifyURL: ps.rc.URL()}); err != nil {
		t.Fatal(err)
	}
	return ps
}

// api sends a signed Pay Score request and checks the response signature.
func (f *psFixture) api(t *testing.T, method, uri string, body any) result {
	t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(t, body)
	}
	r := f.call(t, method, uri, b, nil)
	if err := f.verify(r); err != nil {
		t.Fatalf("%s %s: response signature: %v", method, uri, err)
	}
	return r
}

func (f *psFixture) createBody(no, openid string) map[string]any {
	return map[string]any{
		"out_order_no": no, "appid": f.m.AppID, "service_id": f.svc, "service_introduction": "充电宝租借",
		"time_range": map[string]any{"start_time": "20261123100000"}, "need_user_confirm": false, "openid": openid,
		"risk_fund":  map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 9900},
		"notify_url": f.rc.URL(),
	}
}

func (f *psFixture) completeBody(total int64, payments ...int64) map[string]any {
	var items []map[string]any
	for i, a := range payments {
		items = append(items, map[string]any{"name": "租借费" + string(rune('A'+i)), "amount": a, "count": 1})
	}
	return map[string]any{"appid": f.m.AppID, "service_id": f.svc, "post_payments": items, "total_amount": total,
		"time_range": map[string]any{"end_time": "20261123120000"}}
}

// authorize makes openid authorize the service (no pre-authorization) and
// waits for the callback.
func (f *psFixture) authorize(t *testing.T, openid string) {
	t.Helper()
	res, err := f.sim.AuthorizePayScore(t.Context(), wxpaysim.PayScoreUser{MchID: f.m.MchID, OpenID: openid})
	if err != nil {
		t.Fatalf("AuthorizePayScore(%s): %v", openid, err)
	}
	if err := wait(t, f.sim, res.NotificationID); err != nil {
		t.Fatal(err)
	}
}

// order decodes a query answer.
type psOrder struct {
	State            string `json:"state"`
	StateDescription string `json:"state_description"`
	OrderID          string `json:"order_id"`
	TotalAmount      *int64 `json:"total_amount"`
	OpenID           string `json:"openid"`
	Collection       *struct {
		State        string `json:"state"`
		PayingAmount int64  `json:"paying_amount"`
		PaidAmount   int64  `json:"paid_amount"`
		Details      []struct {
			Amount        int64  `json:"amount"`
			PaidType      string `json:"paid_type"`
			PaidTime      string `json:"paid_time"`
			TransactionID string `json:"transaction_id"`
		} `json:"details"`
	} `json:"collection"`
}

func (f *psFixture) query(t *testing.T, no string) psOrder {
	t.Helper()
	q := url.Values{"out_order_no": {no}, "service_id": {f.svc}, "appid": {f.m.AppID}}
	r := f.api(t, http.MethodGet, "/v3/payscore/serviceorder?"+q.Encode(), nil)
	if r.Status != http.StatusOK {
		t.Fatalf("query %s = %d %s", no, r.Status, r.Body)
	}
	var o psOrder
	if err := json.Unmarshal(r.Body, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

func wantError(t *testing.T, what string, r result, status int, code, msg string) {
	t.Helper()
	if r.Status != status || r.code() != code || !strings.Contains(string(r.Body), msg) {
		t.Fatalf("%s = %d %s, want %d %s containing %q", what, r.Status, r.Body, status, code, msg)
	}
}

// TestPayScoreSimulatorFlow walks the seed's five steps at the simulator:
// pre-authorization, the user's authorization and its callback, create,
// complete, a failed then a successful deduction and PAYSCORE.USER_PAID.
func TestPayScoreSimulatorFlow(t *testing.T) {
	f := newPayScoreFixture(t)
	const code, openid = "PA20261123001", "oUser_flow_1"

	// Step 1: the user has not authorized the service.
	q := url.Values{"appid": {f.m.AppID}, "service_id": {f.svc}}
	r := f.api(t, http.MethodGet, "/v3/payscore/permissions/openid/"+openid+"?"+q.Encode(), nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"authorization_state":"UNAVAILABLE"`) {
		t.Fatalf("query by openid before authorization = %d %s, want UNAVAILABLE", r.Status, r.Body)
	}
	// Step 2: pre-authorization, then the user opens the service.
	r = f.api(t, http.MethodPost, "/v3/payscore/permissions", map[string]any{"service_id": f.svc, "appid": f.m.AppID,
		"authorization_code": code, "notify_url": f.rc.URL()})
	var token struct {
		Token string `json:"apply_permissions_token"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &token) != nil || token.Token == "" {
		t.Fatalf("permissions = %d %s, want an apply_permissions_token", r.Status, r.Body)
	}
	byCode := "/v3/payscore/permissions/authorization-code/" + code + "?service_id=" + f.svc
	if r = f.api(t, http.MethodGet, byCode, nil); !strings.Contains(string(r.Body), `"authorization_state":"UNBINDUSER"`) {
		t.Fatalf("query by code before the user = %d %s, want UNBINDUSER", r.Status, r.Body)
	}
	// Creating for the unauthorized user is NO_AUTH.
	r = f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSFLOW1", openid))
	wantError(t, "create before authorization", r, http.StatusForbidden, "NO_AUTH", "商户暂无权限使用此服务")

	auth, err := f.sim.AuthorizePayScore(t.Context(), wxpaysim.PayScoreUser{MchID: f.m.MchID, OpenID: openid, AuthorizationCode: code})
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, f.sim, auth.NotificationID); err != nil {
		t.Fatal(err)
	}
	ds := f.rc.deliveries()
	if len(ds) != 1 || ds[0].VerifyErr != nil {
		t.Fatalf("deliveries = %+v, want one verified USER_OPEN_SERVICE", ds)
	}
	var ev map[string]string
	if err := json.Unmarshal(ds[0].Plain, &ev); err != nil || ev["user_service_status"] != "USER_OPEN_SERVICE" ||
		ev["authorization_code"] != code || ev["openid"] != openid || ev["service_id"] != f.svc || ev["openorclose_time"] == "" {
		t.Fatalf("USER_OPEN_SERVICE resource = %s (%v)", ds[0].Plain, err)
	}
	if !strings.Contains(string(ds[0].Body), `"event_type":"PAYSCORE.USER_OPEN_SERVICE"`) {
		t.Fatalf("callback body %s, want event_type PAYSCORE.USER_OPEN_SERVICE", ds[0].Body)
	}
	if r = f.api(t, http.MethodGet, byCode, nil); !strings.Contains(string(r.Body), `"authorization_state":"AVAILABLE"`) ||
		!strings.Contains(string(r.Body), `"openid":"`+openid+`"`) {
		t.Fatalf("query by code after authorization = %s, want AVAILABLE for %s", r.Body, openid)
	}

	// Step 3: create (DOING/USER_CONFIRM), idempotent for identical parameters.
	r = f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSFLOW1", openid))
	var created psOrder
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &created) != nil || created.State != "DOING" ||
		created.StateDescription != "USER_CONFIRM" || created.OrderID == "" {
		t.Fatalf("create = %d %s, want DOING/USER_CONFIRM with an order_id", r.Status, r.Body)
	}
	var again psOrder
	r = f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSFLOW1", openid))
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &again) != nil || again.OrderID != created.OrderID {
		t.Fatalf("identical re-create = %d %s, want the same order %s", r.Status, r.Body, created.OrderID)
	}
	changed := f.createBody("PSFLOW1", openid)
	changed["service_introduction"] = "换了"
	wantError(t, "re-create with other parameters", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", changed),
		http.StatusBadRequest, "INVALID_REQUEST", "271316598")

	// Step 4: complete; one-shot; cancel is no longer allowed.
	r = f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSFLOW1/complete", f.completeBody(5000, 4000, 1000))
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"state_description":"MCH_COMPLETE"`) {
		t.Fatalf("complete = %d %s", r.Status, r.Body)
	}
	if o := f.query(t, "PSFLOW1"); o.Collection == nil || o.Collection.State != "USER_PAYING" || o.Collection.PayingAmount != 5000 {
		t.Fatalf("after complete: %+v, want collection USER_PAYING 5000", o)
	}
	wantError(t, "complete twice", f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSFLOW1/complete", f.completeBody(5000, 5000)),
		http.StatusBadRequest, "INVALID_ORDER_STATE", "MCH_COMPLETE")
	wantError(t, "cancel after complete", f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSFLOW1/cancel",
		map[string]any{"appid": f.m.AppID, "service_id": f.svc, "reason": "用户取消"}), http.StatusBadRequest, "INVALID_ORDER_STATE", "271316592")

	// Step 5: a failed deduction (retried later by WeChat), then success.
	res, err := f.sim.DeductPayScore(t.Context(), wxpaysim.PayScoreDeduction{MchID: f.m.MchID, OutOrderNo: "PSFLOW1", Fail: true})
	if err != nil || res.State != "DOING" || res.Attempts != 1 || res.NotificationID != "" {
		t.Fatalf("failed deduction = %+v, %v; want DOING after 1 attempt, no callback", res, err)
	}
	res, err = f.sim.DeductPayScore(t.Context(), wxpaysim.PayScoreDeduction{MchID: f.m.MchID, OutOrderNo: "PSFLOW1"})
	if err != nil || res.State != "DONE" || res.Attempts != 2 || res.TransactionID == "" {
		t.Fatalf("deduction = %+v, %v; want DONE after 2 attempts with a transaction_id", res, err)
	}
	if err := wait(t, f.sim, res.NotificationID); err != nil {
		t.Fatal(err)
	}
	ds = f.rc.deliveries()
	var paid psOrder
	if len(ds) != 2 || ds[1].VerifyErr != nil || json.Unmarshal(ds[1].Plain, &paid) != nil || paid.State != "DONE" ||
		paid.Collection == nil || paid.Collection.State != "USER_PAID" || paid.Collection.PaidAmount != 5000 ||
		len(paid.Collection.Details) != 1 || paid.Collection.Details[0].TransactionID != res.TransactionID ||
		paid.Collection.Details[0].PaidType != "NEWTON" || len(paid.Collection.Details[0].PaidTime) != 14 {
		t.Fatalf("USER_PAID resource = %s", ds[len(ds)-1].Plain)
	}
	if o := f.query(t, "PSFLOW1"); o.State != "DONE" || o.StateDescription != "" || o.Collection.State != "USER_PAID" {
		t.Fatalf("query after payment = %+v, want DONE without state_description, USER_PAID", o)
	}
	if _, err := f.sim.DeductPayScore(t.Context(), wxpaysim.PayScoreDeduction{MchID: f.m.MchID, OutOrderNo: "PSFLOW1"}); !errors.Is(err, wxpaysim.ErrOrderState) {
		t.Fatalf("deducting a DONE order: %v, want ErrOrderState", err)
	}
}

// TestPayScoreSimulatorCreateErrors reproduces the FAQ errors and the
// create rules.
func TestPayScoreSimulatorCreateErrors(t *testing.T) {
	f := newPayScoreFixture(t)
	const openid = "oUser_err"
	f.authorize(t, openid)
	tests := []struct {
		name   string
		setup  func(t *testing.T)
		edit   func(b map[string]any)
		status int
		code   string
		msg    string
	}{
		{"service not the merchant's", nil, func(b map[string]any) { b["service_id"] = "500099999999" }, 403, "NO_AUTH", "商户暂无权限使用此服务"},
		{"need_user_confirm true on a no-confirm service", nil, func(b map[string]any) { b["need_user_confirm"] = true }, 403, "NO_AUTH", "need_user_confirm must be false"},
		{"need_user_confirm omitted", nil, func(b map[string]any) { delete(b, "need_user_confirm") }, 403, "NO_AUTH", "商户暂无权限"},
		{"unauthorized user", nil, func(b map[string]any) { b["openid"] = "oStranger" }, 403, "NO_AUTH", "has not authorized"},
		{"risk_fund name of the other mode", nil, func(b map[string]any) { b["risk_fund"] = map[string]any{"name": "DEPOSIT", "amount": 100} }, 400, "PARAM_ERROR", "订单风险金额名称不符合要求"},
		{"risk_fund above the cap", nil, func(b map[string]any) {
			b["risk_fund"] = map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": wxpaysim.DefaultPayScoreRiskCap + 1}
		}, 400, "PARAM_ERROR", "271316656"},
		{"appid not bound", nil, func(b map[string]any) { b["appid"] = "wxnotbound000001" }, 400, "PARAM_ERROR", "mch_id和AppID未绑定"},
		{"openid missing", nil, func(b map[string]any) { delete(b, "openid") }, 400, "PARAM_ERROR", "/body/openid"},
		{"start_time not yyyyMMddHHmmss", nil, func(b map[string]any) { b["time_range"] = map[string]any{"start_time": "2026-11-23T10:00:00+08:00"} }, 400, "PARAM_ERROR", "start_time"},
		{"out_order_no charset", nil, func(b map[string]any) { b["out_order_no"] = "PS#1" }, 400, "PARAM_ERROR", "out_order_no"},
		{"service_introduction too long", nil, func(b map[string]any) { b["service_introduction"] = strings.Repeat("长", 21) }, 400, "PARAM_ERROR", "大于最大值 20"},
		{"notify_url with a query", nil, func(b map[string]any) { b["notify_url"] = "https://example.com/n?x=1" }, 400, "PARAM_ERROR", "notify_url"},
		{"risk evaluation rejected", func(t *testing.T) {
			if err := f.sim.SetPayScoreRiskRejection(f.m.MchID, openid, 1); err != nil {
				t.Fatal(err)
			}
		}, nil, 400, "INVALID_REQUEST", "综合评估不通过"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			b := f.createBody("PSERR"+string(rune('A'+i)), openid)
			if tc.edit != nil {
				tc.edit(b)
			}
			wantError(t, tc.name, f.api(t, http.MethodPost, "/v3/payscore/serviceorder", b), tc.status, tc.code, tc.msg)
		})
	}
	// The risk rejection was one-shot: the same user can now create.
	if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSOK1", openid)); r.Status != http.StatusOK {
		t.Fatalf("create after the one-shot rejection = %d %s", r.Status, r.Body)
	}
	// At most DefaultPayScoreMaxOpenOrders unfinished orders per user.
	for i := 2; i <= wxpaysim.DefaultPayScoreMaxOpenOrders; i++ {
		if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSOK"+string(rune('0'+i)), openid)); r.Status != http.StatusOK {
			t.Fatalf("create #%d = %d %s", i, r.Status, r.Body)
		}
	}
	wantError(t, "one order too many", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSOK9", openid)),
		http.StatusBadRequest, "INVALID_REQUEST", "存在未完结订单")

	// A service configured in 先免 mode takes DEPOSIT and caps the
	// completion at the create-time risk_fund.amount.
	if err := f.sim.SetPayScoreService(f.m.MchID, wxpaysim.PayScoreService{ServiceID: f.svc, Mode: wxpaysim.PayScoreDepositFree, NotifyURL: f.rc.URL(), MaxOpenOrders: 10}); err != nil {
		t.Fatal(err)
	}
	b := f.createBody("PSDEP1", openid)
	b["risk_fund"] = map[string]any{"name": "DEPOSIT", "amount": 3000}
	if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", b); r.Status != http.StatusOK {
		t.Fatalf("DEPOSIT create in deposit_free mode = %d %s", r.Status, r.Body)
	}
	wantError(t, "deposit_free completion above risk_fund.amount", f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSDEP1/complete",
		f.completeBody(3001, 3001)), http.StatusBadRequest, "PARAM_ERROR", "271316656")
	wantError(t, "ESTIMATE_ORDER_COST in deposit_free mode", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSDEP2", openid)),
		http.StatusBadRequest, "PARAM_ERROR", "订单风险金额名称不符合要求")
}

// TestPayScoreSimulatorOrderCalls checks complete, modify, sync and cancel
// against the state machine and their amount rules.
func TestPayScoreSimulatorOrderCalls(t *testing.T) {
	f := newPayScoreFixture(t)
	const openid = "oUser_calls"
	f.authorize(t, openid)
	if err := f.sim.SetPayScoreService(f.m.MchID, wxpaysim.PayScoreService{ServiceID: f.svc, NotifyURL: f.rc.URL(), MaxOpenOrders: 20}); err != nil {
		t.Fatal(err)
	}
	create := func(no string) {
		t.Helper()
		if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody(no, openid)); r.Status != http.StatusOK {
			t.Fatalf("create %s = %d %s", no, r.Status, r.Body)
		}
	}
	post := func(no, op string, body map[string]any) result {
		t.Helper()
		return f.api(t, http.MethodPost, "/v3/payscore/serviceorder/"+no+"/"+op, body)
	}
	modify := func(total int64, payments ...int64) map[string]any {
		b := f.completeBody(total, payments...)
		delete(b, "time_range")
		b["reason"] = "调整价格"
		return b
	}
	sync := map[string]any{"appid": f.m.AppID, "service_id": f.svc, "type": "Order_Paid", "detail": map[string]any{"paid_time": "20261123130000"}}
	cancel := map[string]any{"appid": f.m.AppID, "service_id": f.svc, "reason": "用户取消"}

	create("PSC1")
	wantError(t, "modify before complete", post("PSC1", "modify", modify(100, 100)), 400, "INVALID_ORDER_STATE", "USER_CONFIRM")
	wantError(t, "sync before complete", post("PSC1", "sync", sync), 400, "INVALID_ORDER_STATE", "USER_CONFIRM")
	wantError(t, "complete with a wrong total", post("PSC1", "complete", f.completeBody(4999, 4000, 1000)), 400, "PARAM_ERROR", "total_amount")
	wantError(t, "complete above the cap", post("PSC1", "complete", f.completeBody(wxpaysim.DefaultPayScoreRiskCap+1, wxpaysim.DefaultPayScoreRiskCap+1)), 400, "PARAM_ERROR", "271316656")
	wantError(t, "complete without payments", post("PSC1", "complete", f.completeBody(0)), 400, "PARAM_ERROR", "post_payments")
	noEnd := f.completeBody(100, 100)
	delete(noEnd, "time_range")
	wantError(t, "complete without end_time", post("PSC1", "complete", noEnd), 400, "PARAM_ERROR", "end_time")
	wantError(t, "unknown order", post("PSNOPE", "complete", f.completeBody(100, 100)), 404, "ORDER_NOT_EXIST", "订单不存在")
	if r := post("PSC1", "complete", f.completeBody(5000, 4000, 1000)); r.Status != http.StatusOK {
		t.Fatalf("complete = %d %s", r.Status, r.Body)
	}
	wantError(t, "modify upwards", post("PSC1", "modify", modify(5001, 5001)), 400, "PARAM_ERROR", "仅可下调")
	wantError(t, "modify to the same amount", post("PSC1", "modify", modify(5000, 5000)), 400, "PARAM_ERROR", "仅可下调")
	noReason := modify(100, 100)
	delete(noReason, "reason")
	wantError(t, "modify without reason", post("PSC1", "modify", noReason), 400, "PARAM_ERROR", "reason")
	if r := post("PSC1", "modify", modify(3000, 3000)); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"total_amount":3000`) {
		t.Fatalf("modify down = %d %s", r.Status, r.Body)
	}
	badType := map[string]any{"appid": f.m.AppID, "service_id": f.svc, "type": "SYNC_SUCCESSFUL_DONE", "detail": map[string]any{"paid_time": "20261123130000"}}
	wantError(t, "sync with another type", post("PSC1", "sync", badType), 400, "PARAM_ERROR", "Order_Paid")
	if r := post("PSC1", "sync", sync); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"state":"DONE"`) ||
		!strings.Contains(string(r.Body), `"paid_type":"MCH"`) {
		t.Fatalf("sync = %d %s, want DONE paid by MCH", r.Status, r.Body)
	}
	wantError(t, "sync twice", post("PSC1", "sync", sync), 400, "ORDER_DONE", "订单已完成")
	wantError(t, "cancel a DONE order", post("PSC1", "cancel", cancel), 400, "ORDER_DONE", "订单已完成")

	create("PSC2")
	if r := post("PSC2", "cancel", cancel); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"order_id"`) {
		t.Fatalf("cancel = %d %s", r.Status, r.Body)
	}
	if o := f.query(t, "PSC2"); o.State != "REVOKED" {
		t.Fatalf("after cancel: %+v, want REVOKED", o)
	}
	wantError(t, "cancel twice", post("PSC2", "cancel", cancel), 400, "ORDER_CANCELED", "订单已取消")
	wantError(t, "complete a REVOKED order", post("PSC2", "complete", f.completeBody(100, 100)), 400, "ORDER_CANCELED", "订单已取消")
	if _, err := f.sim.DeductPayScore(t.Context(), wxpaysim.PayScoreDeduction{MchID: f.m.MchID, OutOrderNo: "PSNOPE"}); !errors.Is(err, wxpaysim.ErrOrderNotFound) {
		t.Fatalf("deduct unknown: %v, want ErrOrderNotFound", err)
	}
}

// TestPayScoreSimulatorAppIDMustMatch: create, complete and cancel must use
// the same appid (error 4108).
func TestPayScoreSimulatorAppIDMustMatch(t *testing.T) {
	f := newPayScoreFixture(t)
	c := wxpaysim.MerchantFromTestKeys(f.m, wxpaysim.ModePublicKey, f.rc.URL())
	c.MchID, c.AppIDs = "1900000110", []string{f.m.AppID, "wxsecondapp00001"}
	if err := f.sim.AddMerchant(c); err != nil {
		t.Fatal(err)
	}
	as := func(s *signSpec) { s.MchID = c.MchID }
	if _, err := f.sim.AuthorizePayScore(t.Context(), wxpaysim.PayScoreUser{MchID: c.MchID, OpenID: "oTwo"}); err != nil {
		t.Fatal(err)
	}
	if r := f.call(t, http.MethodPost, "/v3/payscore/serviceorder", mustJSON(t, f.createBody("PSAPP1", "oTwo")), as); r.Status != http.StatusOK {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	b := f.completeBody(100, 100)
	b["appid"] = "wxsecondapp00001"
	wantError(t, "complete with the other appid", f.call(t, http.MethodPost, "/v3/payscore/serviceorder/PSAPP1/complete", mustJSON(t, b), as),
		http.StatusBadRequest, "PARAM_ERROR", "4108")
}

// TestPayScoreSimulatorTerminate: merchant termination by openid and by
// code, user revocation, each with its USER_CLOSE_SERVICE callback.
func TestPayScoreSimulatorTerminate(t *testing.T) {
	f := newPayScoreFixture(t)
	f.authorize(t, "oTerm1")
	q := url.Values{"appid": {f.m.AppID}, "service_id": {f.svc}}
	reason := map[string]any{"service_id": f.svc, "appid": f.m.AppID, "reason": "用户申请解约"}
	long := map[string]any{"service_id": f.svc, "appid": f.m.AppID, "reason": strings.Repeat("长", 51)}
	wantError(t, "terminate with a long reason", f.api(t, http.MethodPost, "/v3/payscore/permissions/openid/oTerm1/terminate", long),
		http.StatusBadRequest, "PARAM_ERROR", "大于最大值 50")
	if r := f.api(t, http.MethodPost, "/v3/payscore/permissions/openid/oTerm1/terminate", reason); r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("terminate by openid = %d %s, want 204 without body", r.Status, r.Body)
	}
	waitFor(t, "USER_CLOSE_SERVICE", func() bool { return len(f.rc.deliveries()) == 2 })
	if d := f.rc.deliveries()[1]; !strings.Contains(string(d.Plain), `"user_service_status":"USER_CLOSE_SERVICE"`) {
		t.Fatalf("callback after terminate = %s", d.Plain)
	}
	r := f.api(t, http.MethodGet, "/v3/payscore/permissions/openid/oTerm1?"+q.Encode(), nil)
	if !strings.Contains(string(r.Body), `"authorization_state":"UNAVAILABLE"`) || !strings.Contains(string(r.Body), `"cancel_authorization_time"`) {
		t.Fatalf("after terminate: %s, want UNAVAILABLE with cancel_authorization_time", r.Body)
	}
	wantError(t, "terminate twice", f.api(t, http.MethodPost, "/v3/payscore/permissions/openid/oTerm1/terminate", reason),
		http.StatusBadRequest, "INVALID_REQUEST", "未授权")
	wantError(t, "create after terminate", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PST1", "oTerm1")),
		http.StatusForbidden, "NO_AUTH", "has not authorized")

	// By code, through the admin API.
	if r := f.api(t, http.MethodPost, "/v3/payscore/permissions", map[string]any{"service_id": f.svc, "appid": f.m.AppID,
		"authorization_code": "PACODE2"}); r.Status != http.StatusOK {
		t.Fatalf("permissions = %d %s", r.Status, r.Body)
	}
	var ur wxpaysim.PayScoreUserResult
	if st := f.admin(t, http.MethodPost, "/sim/payscore/users/authorize", map[string]any{"mchid": f.m.MchID, "openid": "oTerm2", "authorization_code": "PACODE2"}, &ur); st != http.StatusOK || ur.NotificationID == "" {
		t.Fatalf("admin authorize = %d %+v", st, ur)
	}
	if st := f.admin(t, http.MethodPost, "/sim/payscore/users/authorize", map[string]any{"mchid": f.m.MchID, "openid": "oTerm3", "authorization_code": "PACODE2"}, nil); st != http.StatusConflict {
		t.Fatalf("second user on the same code = %d, want 409", st)
	}
	if r := f.api(t, http.MethodPost, "/v3/payscore/permissions/authorization-code/PACODE2/terminate", map[string]any{"service_id": f.svc, "reason": "解约"}); r.Status != http.StatusNoContent {
		t.Fatalf("terminate by code = %d %s", r.Status, r.Body)
	}
	if r := f.api(t, http.MethodGet, "/v3/payscore/permissions/authorization-code/PACODE2?service_id="+f.svc, nil); !strings.Contains(string(r.Body), `"authorization_state":"UNAVAILABLE"`) {
		t.Fatalf("code after terminate: %s", r.Body)
	}
	wantError(t, "unknown code", f.api(t, http.MethodGet, "/v3/payscore/permissions/authorization-code/NOPE?service_id="+f.svc, nil),
		http.StatusNotFound, "RESOURCE_NOT_EXISTS", "授权记录不存在")

	// The user revokes in the WeChat app.
	f.authorize(t, "oTerm4")
	if st := f.admin(t, http.MethodPost, "/sim/payscore/users/revoke", map[string]any{"mchid": f.m.MchID, "openid": "oTerm4"}, &ur); st != http.StatusOK {
		t.Fatalf("admin revoke = %d", st)
	}
	if err := wait(t, f.sim, ur.NotificationID); err != nil {
		t.Fatal(err)
	}
	if st := f.admin(t, http.MethodPost, "/sim/payscore/users/revoke", map[string]any{"mchid": f.m.MchID, "openid": "oTerm4"}, nil); st != http.StatusConflict {
		t.Fatalf("revoke twice = %d, want 409", st)
	}
}

// TestPayScoreSimulatorAdmin covers the admin routes for services, risk
// faults and deductions, and Reset.
func TestPayScoreSimulatorAdmin(t *testing.T) {
	f := newPayScoreFixture(t)
	if st := f.admin(t, http.MethodPost, "/sim/payscore/services", map[string]any{"mchid": f.m.MchID, "service_id": f.svc, "mode": "weird"}, nil); st != http.StatusBadRequest {
		t.Fatalf("unknown mode = %d, want 400", st)
	}
	var svc wxpaysim.PayScoreService
	if st := f.admin(t, http.MethodPost, "/sim/payscore/services", map[string]any{"mchid": f.m.MchID, "service_id": f.svc, "notify_url": f.rc.URL(), "risk_cap": 9900}, &svc); st != http.StatusOK ||
		svc.Mode != wxpaysim.PayScoreEnjoyFirst || svc.RiskCap != 9900 || svc.MaxOpenOrders != wxpaysim.DefaultPayScoreMaxOpenOrders {
		t.Fatalf("configure service = %d %+v", st, svc)
	}
	f.authorize(t, "oAdmin")
	b := f.createBody("PSADM1", "oAdmin")
	b["risk_fund"] = map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 9901}
	wantError(t, "configured cap", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", b), 400, "PARAM_ERROR", "271316656")

	if st := f.admin(t, http.MethodPost, "/sim/payscore/risk-rejections", map[string]any{"mchid": f.m.MchID}, nil); st != http.StatusCreated {
		t.Fatalf("set risk rejection = %d", st)
	}
	for _, no := range []string{"PSADM2", "PSADM3"} {
		wantError(t, "risk rejection until cleared", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody(no, "oAdmin")), 400, "INVALID_REQUEST", "综合评估不通过")
	}
	if st := f.admin(t, http.MethodDelete, "/sim/payscore/risk-rejections", nil, nil); st != http.StatusOK {
		t.Fatalf("clear risk = %d", st)
	}
	if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSADM4", "oAdmin")); r.Status != http.StatusOK {
		t.Fatalf("create after clearing = %d %s", r.Status, r.Body)
	}
	if st := f.admin(t, http.MethodPost, "/sim/payscore/orders/deduct", map[string]any{"mchid": f.m.MchID, "out_order_no": "PSADM4"}, nil); st != http.StatusConflict {
		t.Fatalf("deduct before complete = %d, want 409", st)
	}
	if r := f.api(t, http.MethodPost, "/v3/payscore/serviceorder/PSADM4/complete", f.completeBody(700, 700)); r.Status != http.StatusOK {
		t.Fatalf("complete = %d %s", r.Status, r.Body)
	}
	var res wxpaysim.PayScoreDeductionResult
	if st := f.admin(t, http.MethodPost, "/sim/payscore/orders/deduct", map[string]any{"mchid": f.m.MchID, "out_order_no": "PSADM4", "drop_callback": true}, &res); st != http.StatusOK ||
		res.State != "DONE" || res.NotificationID != "" || !strings.Contains(string(res.Order), `"paid_amount":700`) {
		t.Fatalf("deduct with a dropped callback = %d %+v", st, res)
	}
	for _, d := range f.sim.Deliveries() {
		if d.EventType == "PAYSCORE.USER_PAID" {
			t.Fatalf("a dropped callback was queued: %+v", d)
		}
	}
	if st := f.admin(t, http.MethodPost, "/sim/payscore/orders/deduct", map[string]any{"mchid": f.m.MchID, "out_order_no": "NOPE"}, nil); st != http.StatusNotFound {
		t.Fatalf("deduct unknown = %d, want 404", st)
	}

	// Reset drops orders and authorizations but keeps the service config.
	f.sim.Reset()
	wantError(t, "create after Reset", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", f.createBody("PSADM5", "oAdmin")), 403, "NO_AUTH", "has not authorized")
	q := url.Values{"out_order_no": {"PSADM4"}, "service_id": {f.svc}, "appid": {f.m.AppID}}
	wantError(t, "query after Reset", f.api(t, http.MethodGet, "/v3/payscore/serviceorder?"+q.Encode(), nil), 404, "ORDER_NOT_EXIST", "订单不存在")
	f.authorize(t, "oAdmin")
	wantError(t, "cap survives Reset", f.api(t, http.MethodPost, "/v3/payscore/serviceorder", b), 400, "PARAM_ERROR", "271316656")
	var idx struct {
		Endpoints []struct {
			Path string `json:"path"`
		} `json:"endpoints"`
	}
	f.admin(t, http.MethodGet, "/sim", nil, &idx)
	n := 0
	for _, e := range idx.Endpoints {
		if strings.HasPrefix(e.Path, "/sim/payscore/") {
			n++
		}
	}
	if n != 6 {
		t.Fatalf("admin index lists %d pay score endpoints, want 6", n)
	}
}
