package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payscore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// psOrder is an order as the payscore routes answer it.
type psOrder struct {
	OutOrderNo       string          `json:"out_order_no"`
	OpenID           string          `json:"openid"`
	OrderID          string          `json:"order_id"`
	State            string          `json:"state"`
	StateDescription string          `json:"state_description"`
	CollectionState  string          `json:"collection_state"`
	TotalAmount      int64           `json:"total_amount"`
	PaidAmount       int64           `json:"paid_amount"`
	TransactionID    string          `json:"transaction_id"`
	PaidType         string          `json:"paid_type"`
	PaidTime         string          `json:"paid_time"`
	CancelReason     string          `json:"cancel_reason"`
	LastError        string          `json:"last_error"`
	Replayed         bool            `json:"replayed"`
	Collection       json.RawMessage `json:"collection"`
}

// psAuthorization is an authorization as the payscore routes answer it.
type psAuthorization struct {
	ServiceID             string `json:"service_id"`
	OpenID                string `json:"openid"`
	AuthorizationCode     string `json:"authorization_code"`
	State                 string `json:"state"`
	From                  string `json:"from"`
	ApplyPermissionsToken string `json:"apply_permissions_token"`
	Open                  struct {
		BusinessType string `json:"business_type"`
		Query        string `json:"query"`
	} `json:"open_authorization"`
}

// psWorld is a stack whose simulated Pay Score service sends its
// authorization callbacks to the front door.
type psWorld struct {
	*world
	svc string
	mch string
}

func newPayScoreWorld(t *testing.T) *psWorld {
	t.Helper()
	w := &psWorld{world: newWorld(t, stackOptions())}
	w.svc, w.mch = w.Merchant.ServiceID, w.Merchant.MchID
	w.setService(t, wxpaysim.PayScoreService{})
	return w
}

// setService (re)configures the simulated service; the notify_url and a
// generous open-order limit are always set.
func (w *psWorld) setService(t *testing.T, svc wxpaysim.PayScoreService) {
	t.Helper()
	svc.ServiceID, svc.NotifyURL = w.svc, w.FrontURL+"/notify/payscore"
	if svc.MaxOpenOrders == 0 {
		svc.MaxOpenOrders = 50
	}
	if err := w.Sim.SetPayScoreService(w.mch, svc); err != nil {
		t.Fatal(err)
	}
}

// do sends a request through the front door (a json.RawMessage body is
// sent as is, anything else JSON-encoded); out may be nil.
func (w *psWorld) do(t *testing.T, method, path string, in any, out any) (int, string) {
	t.Helper()
	return w.doAt(t, w.FrontURL, true, method, path, in, out)
}

// doAt is do against another front door; withToken adds the dev JWT.
func (w *psWorld) doAt(t *testing.T, base string, withToken bool, method, path string, in any, out any) (int, string) {
	t.Helper()
	var body io.Reader
	switch b := in.(type) {
	case nil:
	case json.RawMessage:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if withToken {
		token, err := w.Token(time.Hour, apigw.ScopeApp)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	var sent []byte
	if req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			sent, _ = io.ReadAll(rc)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if withToken && base == w.FrontURL {
		checkAPI(t, method, path, sent, resp, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, string(raw)
}

// wechatCalls is how many /v3/ requests the simulator has seen.
func (w *psWorld) wechatCalls() int { return len(w.Sim.Requests()) }

// calls lists "METHOD path" of the simulator requests after the first n.
func (w *psWorld) callsSince(n int) []string {
	var out []string
	for _, r := range w.Sim.Requests()[n:] {
		p, _, _ := strings.Cut(r.Path, "?")
		out = append(out, r.Method+" "+p)
	}
	return out
}

func (w *psWorld) waitDelivered(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Sim.WaitDelivered(ctx, id); err != nil {
		t.Fatalf("notification %s: %v", id, err)
	}
	for _, d := range w.deliveries(id) {
		if d.Acked && d.Status != http.StatusNoContent && d.Status != http.StatusOK {
			t.Fatalf("notification %s acknowledged with %d", id, d.Status)
		}
	}
}

// authorize makes the user open the service in the simulated WeChat app and
// waits until the notify function acknowledged PAYSCORE.USER_OPEN_SERVICE.
func (w *psWorld) authorize(t *testing.T, openid, code string) {
	t.Helper()
	res, err := w.Sim.AuthorizePayScore(context.Background(), wxpaysim.PayScoreUser{MchID: w.mch, OpenID: openid, AuthorizationCode: code})
	if err != nil {
		t.Fatalf("AuthorizePayScore(%s): %v", openid, err)
	}
	w.waitDelivered(t, res.NotificationID)
}

func createBody(no, openid string) map[string]any {
	return map[string]any{"out_order_no": no, "openid": openid, "service_introduction": "充电宝租借",
		"time_range": map[string]any{"start_time": "20261123100000"}, "location": map[string]any{"start_location": "深圳腾大"},
		"risk_fund": map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 9900, "description": "充电宝押金"}}
}

func completeBody(total int64, payments ...int64) map[string]any {
	var items []map[string]any
	for i, a := range payments {
		items = append(items, map[string]any{"name": fmt.Sprintf("租借费%d", i+1), "amount": a, "description": "每小时1元", "count": 1})
	}
	return map[string]any{"post_payments": items, "total_amount": total, "time_range": map[string]any{"end_time": "20261123120000"}}
}

func modifyBody(total int64) map[string]any {
	return map[string]any{"post_payments": []map[string]any{{"name": "租借费", "amount": total, "count": 1}}, "total_amount": total, "reason": "价格调整"}
}

var cancelBody = map[string]any{"reason": "用户取消"}

// syncBody reports a payment made elsewhere an hour ago.
func syncBody() map[string]any {
	return map[string]any{"type": "Order_Paid", "detail": map[string]any{"paid_time": ledger.PayScoreTime(time.Now().Add(-time.Hour))}}
}

func (w *psWorld) create(t *testing.T, no, openid string) psOrder {
	t.Helper()
	var o psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody(no, openid), &o); st != http.StatusCreated ||
		o.State != "DOING" || o.StateDescription != "USER_CONFIRM" || o.OrderID == "" {
		t.Fatalf("create %s = %d %s, want 201 DOING/USER_CONFIRM with an order_id", no, st, raw)
	}
	return o
}

func (w *psWorld) complete(t *testing.T, no string, total int64, payments ...int64) psOrder {
	t.Helper()
	var o psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders/"+no+"/complete", completeBody(total, payments...), &o); st != http.StatusOK ||
		o.StateDescription != "MCH_COMPLETE" || o.CollectionState != "USER_PAYING" || o.TotalAmount != total {
		t.Fatalf("complete %s = %d %s, want DOING/MCH_COMPLETE USER_PAYING %d", no, st, raw, total)
	}
	return o
}

func (w *psWorld) order(t *testing.T, no string) psOrder {
	t.Helper()
	var o psOrder
	if st, raw := w.do(t, http.MethodGet, "/payscore/orders/"+no, nil, &o); st != http.StatusOK {
		t.Fatalf("GET order %s = %d %s", no, st, raw)
	}
	return o
}

// wantError checks an error answer's status and code, and that the message
// contains msg.
func wantError(t *testing.T, what string, status int, raw string, wantStatus int, wantCode, msg string) {
	t.Helper()
	var e apigw.ErrorBody
	if err := json.Unmarshal([]byte(raw), &e); err != nil || status != wantStatus || e.Code != wantCode || !strings.Contains(e.Message, msg) {
		t.Fatalf("%s = %d %s, want %d %s with a message containing %q", what, status, raw, wantStatus, wantCode, msg)
	}
}

// TestPayScoreSeedFlowEndToEnd walks the official no-confirm guide's five
// steps through the HTTP routes: an unauthorized user, pre-authorization,
// the user authorizes (simulator) and the callback arrives, create (DOING),
// complete, a failed then a successful deduction, PAYSCORE.USER_PAID, DONE.
func TestPayScoreSeedFlowEndToEnd(t *testing.T) {
	w := newPayScoreWorld(t)
	ctx := context.Background()
	const openid = "oSeedUser_1"

	// Step 1: the user's authorization state (asked at WeChat, cached).
	var a psAuthorization
	if st, raw := w.do(t, http.MethodGet, "/payscore/users/"+openid+"/authorization", nil, &a); st != http.StatusOK ||
		a.State != "UNAVAILABLE" || a.From != "wechat" {
		t.Fatalf("step 1: GET authorization = %d %s, want UNAVAILABLE from wechat", st, raw)
	}
	n := w.wechatCalls()
	st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSSEED1", openid), nil)
	wantError(t, "create for an unauthorized user", st, raw, http.StatusForbidden, payscore.CodeUserNotAuthorized, openid)
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("create for an unauthorized user called WeChat: %v", got)
	}

	// Step 2: pre-authorization; the user opens the service with the token.
	var pre psAuthorization
	if st, raw := w.do(t, http.MethodPost, "/payscore/authorizations", nil, &pre); st != http.StatusCreated || pre.ApplyPermissionsToken == "" ||
		pre.State != "UNBINDUSER" || !ledger.ValidAuthorizationCode(pre.AuthorizationCode) || pre.Open.BusinessType != "wxpayScoreEnable" ||
		!strings.Contains(pre.Open.Query, pre.ApplyPermissionsToken) {
		t.Fatalf("step 2: pre-authorization = %d %s", st, raw)
	}
	var permReq map[string]string
	for _, r := range w.Sim.Requests() {
		if r.Path == "/v3/payscore/permissions" {
			_ = json.Unmarshal(r.Body, &permReq)
		}
	}
	if permReq["notify_url"] != w.FrontURL+"/notify/payscore" || permReq["authorization_code"] != pre.AuthorizationCode || permReq["service_id"] != w.svc {
		t.Fatalf("permissions request = %v, want notify_url %s/notify/payscore and the code", permReq, w.FrontURL)
	}
	w.authorize(t, openid, pre.AuthorizationCode)
	// The USER_OPEN_SERVICE callback updated the cache: no WeChat call.
	n = w.wechatCalls()
	if st, raw := w.do(t, http.MethodGet, "/payscore/users/"+openid+"/authorization", nil, &a); st != http.StatusOK ||
		a.State != "AVAILABLE" || a.From != "cache" || a.AuthorizationCode != pre.AuthorizationCode {
		t.Fatalf("after the callback: GET authorization = %d %s, want AVAILABLE from the cache with the code", st, raw)
	}
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("cached authorization called WeChat: %v", got)
	}
	var byCode psAuthorization
	if st, raw := w.do(t, http.MethodGet, "/payscore/authorizations/"+pre.AuthorizationCode, nil, &byCode); st != http.StatusOK ||
		byCode.State != "AVAILABLE" || byCode.OpenID != openid {
		t.Fatalf("GET by code = %d %s, want AVAILABLE for %s", st, raw, openid)
	}
	n = w.wechatCalls()
	if st, raw := w.do(t, http.MethodGet, "/payscore/authorizations/"+pre.AuthorizationCode, nil, &byCode); st != http.StatusOK ||
		byCode.State != "AVAILABLE" || byCode.From != "cache" || len(w.callsSince(n)) != 0 {
		t.Fatalf("second GET by code = %d %s (calls %v), want AVAILABLE from the cache", st, raw, w.callsSince(n))
	}

	// Step 3: create (need_user_confirm=false, risk_fund of 先享 mode).
	n = w.wechatCalls()
	o := w.create(t, "PSSEED1", openid)
	var sent map[string]any
	for _, r := range w.Sim.Requests()[n:] {
		if r.Method == http.MethodPost && r.Path == "/v3/payscore/serviceorder" {
			_ = json.Unmarshal(r.Body, &sent)
		}
	}
	if sent["need_user_confirm"] != false || sent["openid"] != openid || sent["appid"] != w.Merchant.AppID ||
		sent["notify_url"] != w.FrontURL+"/notify/payscore" || fmt.Sprint(sent["risk_fund"]) != "map[amount:9900 description:充电宝押金 name:ESTIMATE_ORDER_COST]" {
		t.Fatalf("create request sent to WeChat = %v", sent)
	}

	// Step 4: complete; WeChat starts deducting.
	w.complete(t, "PSSEED1", 5000, 4000, 1000)
	failed, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSSEED1", Fail: true})
	if err != nil || failed.State != "DOING" {
		t.Fatalf("failed deduction = %+v, %v", failed, err)
	}
	if got := w.order(t, "PSSEED1"); got.State != "DOING" || got.CollectionState != "USER_PAYING" {
		t.Fatalf("after a failed deduction: %+v, want DOING USER_PAYING", got)
	}

	// Step 5: WeChat's retry succeeds; PAYSCORE.USER_PAID settles the order.
	paid, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSSEED1"})
	if err != nil || paid.NotificationID == "" {
		t.Fatalf("deduction = %+v, %v", paid, err)
	}
	w.waitDelivered(t, paid.NotificationID)
	got := w.order(t, "PSSEED1")
	if got.State != "DONE" || got.StateDescription != "USER_PAID" || got.CollectionState != "USER_PAID" || got.PaidAmount != 5000 ||
		got.TransactionID != paid.TransactionID || got.PaidType != "NEWTON" || got.OrderID != o.OrderID || !bytes.Contains(got.Collection, []byte(paid.TransactionID)) {
		t.Fatalf("after USER_PAID: %+v, want DONE/USER_PAID 5000 with transaction %s", got, paid.TransactionID)
	}
	// The live view agrees with the callback.
	var live psOrder
	if st, raw := w.do(t, http.MethodGet, "/payscore/orders/PSSEED1?live=true", nil, &live); st != http.StatusOK || live.State != "DONE" || live.PaidAmount != 5000 {
		t.Fatalf("live GET = %d %s", st, raw)
	}
}

// TestPayScoreModifyThenPay: the amount is lowered while WeChat deducts,
// and the user pays the lowered amount.
func TestPayScoreModifyThenPay(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oModify_1", "")
	w.create(t, "PSMOD1", "oModify_1")
	w.complete(t, "PSMOD1", 5000, 5000)
	var o psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders/PSMOD1/modify", modifyBody(3000), &o); st != http.StatusOK ||
		o.TotalAmount != 3000 || o.StateDescription != "MCH_COMPLETE" {
		t.Fatalf("modify = %d %s, want total 3000 still MCH_COMPLETE", st, raw)
	}
	paid, err := w.Sim.DeductPayScore(context.Background(), wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSMOD1"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(t, paid.NotificationID)
	if got := w.order(t, "PSMOD1"); got.State != "DONE" || got.PaidAmount != 3000 || got.TotalAmount != 3000 {
		t.Fatalf("after payment: %+v, want DONE paid 3000", got)
	}
}

// TestPayScoreCancelBranch: an order is cancelled before complete.
func TestPayScoreCancelBranch(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oCancel_1", "")
	w.create(t, "PSCAN1", "oCancel_1")
	var o psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders/PSCAN1/cancel", cancelBody, &o); st != http.StatusOK ||
		o.State != "REVOKED" || o.CancelReason != "用户取消" {
		t.Fatalf("cancel = %d %s, want REVOKED", st, raw)
	}
	var live psOrder
	if st, _ := w.do(t, http.MethodGet, "/payscore/orders/PSCAN1?live=true", nil, &live); st != http.StatusOK || live.State != "REVOKED" {
		t.Fatalf("WeChat's view after cancel: %+v, want REVOKED", live)
	}
}

// TestPayScoreSyncBranch: the user paid elsewhere; sync stops WeChat's
// deduction and settles the order.
func TestPayScoreSyncBranch(t *testing.T) {
	w := newPayScoreWorld(t)
	ctx := context.Background()
	w.authorize(t, "oSync_1", "")
	w.create(t, "PSSYNC1", "oSync_1")
	w.complete(t, "PSSYNC1", 2000, 2000)
	var o psOrder
	body := syncBody()
	paidTime := body["detail"].(map[string]any)["paid_time"].(string)
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders/PSSYNC1/sync", body, &o); st != http.StatusOK ||
		o.State != "DONE" || o.CollectionState != "USER_PAID" || o.PaidType != "MCH" || o.PaidAmount != 2000 || o.PaidTime != paidTime {
		t.Fatalf("sync = %d %s, want DONE paid 2000 by MCH", st, raw)
	}
	if _, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSSYNC1"}); err == nil {
		t.Fatal("WeChat still deducted a synced order")
	}
	var byDay []ledger.PayScoreOrder
	paid, err := ledger.ParsePayScoreTime(paidTime)
	if err != nil {
		t.Fatal(err)
	}
	day := ledger.Day(paid)
	if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.DayIndex(ledger.PayScoreDayKind, day)}, &byDay); err != nil ||
		len(byDay) != 1 || byDay[0].OutOrderNo != "PSSYNC1" {
		t.Fatalf("day index of %s = %+v (%v), want PSSYNC1 (filed under the paid day)", day, byDay, err)
	}
}

// TestPayScoreTerminateBranches: the merchant ends authorizations by openid
// and by code; the callbacks that follow agree; ended authorizations are
// refused locally afterwards.
func TestPayScoreTerminateBranches(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oTerm_1", "")
	var a psAuthorization
	if st, raw := w.do(t, http.MethodDelete, "/payscore/users/oTerm_1/authorization", map[string]any{"reason": "用户申请解约"}, &a); st != http.StatusOK || a.State != "UNAVAILABLE" {
		t.Fatalf("DELETE by openid = %d %s, want UNAVAILABLE", st, raw)
	}
	// WeChat's USER_CLOSE_SERVICE follows; the state stays UNAVAILABLE.
	waitFor(t, "USER_CLOSE_SERVICE delivered", func() bool {
		for _, d := range w.Sim.Deliveries() {
			if d.EventType == "PAYSCORE.USER_CLOSE_SERVICE" && d.Acked {
				return true
			}
		}
		return false
	})
	if st, _ := w.do(t, http.MethodGet, "/payscore/users/oTerm_1/authorization", nil, &a); st != http.StatusOK || a.State != "UNAVAILABLE" {
		t.Fatalf("after the close callback: %+v", a)
	}
	n := w.wechatCalls()
	st, raw := w.do(t, http.MethodDelete, "/payscore/users/oTerm_1/authorization", nil, nil)
	wantError(t, "DELETE again", st, raw, http.StatusConflict, payscore.CodeAuthorizationActive, "UNAVAILABLE")
	st, raw = w.do(t, http.MethodPost, "/payscore/orders", createBody("PSTERM1", "oTerm_1"), nil)
	wantError(t, "create after termination", st, raw, http.StatusForbidden, payscore.CodeUserNotAuthorized, "UNAVAILABLE")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("refused calls reached WeChat: %v", got)
	}

	// By code: pre-authorized for a known user, authorized, terminated.
	var pre psAuthorization
	if st, raw := w.do(t, http.MethodPost, "/payscore/authorizations", map[string]any{"authorization_code": "PATERM2", "openid": "oTerm_2"}, &pre); st != http.StatusCreated || pre.OpenID != "oTerm_2" {
		t.Fatalf("pre-authorization = %d %s", st, raw)
	}
	n = w.wechatCalls()
	st, raw = w.do(t, http.MethodPost, "/payscore/authorizations", map[string]any{"authorization_code": "PATERM2", "openid": "oSomeoneElse"}, nil)
	wantError(t, "code reused for another user", st, raw, http.StatusConflict, payscore.CodeAuthorizationCode, "PATERM2")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("refused pre-authorization reached WeChat: %v", got)
	}
	w.authorize(t, "oTerm_2", "PATERM2")
	if st, raw := w.do(t, http.MethodGet, "/payscore/authorizations/PATERM2", nil, &a); st != http.StatusOK || a.State != "AVAILABLE" || a.From != "cache" {
		t.Fatalf("GET by code for a known user = %d %s, want AVAILABLE from the cache", st, raw)
	}
	if st, raw := w.do(t, http.MethodDelete, "/payscore/authorizations/PATERM2", nil, &a); st != http.StatusOK || a.State != "UNAVAILABLE" {
		t.Fatalf("DELETE by code = %d %s, want UNAVAILABLE", st, raw)
	}
	n = w.wechatCalls()
	st, raw = w.do(t, http.MethodDelete, "/payscore/authorizations/PATERM2", nil, nil)
	wantError(t, "DELETE by code again", st, raw, http.StatusConflict, payscore.CodeAuthorizationActive, "PATERM2")
	st, raw = w.do(t, http.MethodDelete, "/payscore/authorizations/PANEVER", nil, nil)
	wantError(t, "DELETE an unknown code", st, raw, http.StatusNotFound, apigw.CodeNotFound, "PANEVER")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("refused terminations reached WeChat: %v", got)
	}
	if st, _ := w.do(t, http.MethodGet, "/payscore/users/oTerm_2/authorization", nil, &a); st != http.StatusOK || a.State != "UNAVAILABLE" {
		t.Fatalf("user after DELETE by code: %+v, want UNAVAILABLE", a)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPayScoreLocalRules: every rule checked before WeChat answers its
// specific 4xx, and WeChat sees no request at all.
func TestPayScoreLocalRules(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oRules_1", "")
	w.create(t, "PSRULE1", "oRules_1") // DOING/USER_CONFIRM, no end_time
	w.create(t, "PSRULE2", "oRules_1")
	w.complete(t, "PSRULE2", 5000, 5000) // DOING/MCH_COMPLETE
	if err := w.Store.Put(context.Background(), &store.Put{Key: ledger.AuthorizationKey(w.svc, "oRevoked_1"),
		Value: ledger.PayScoreAuthorization{ServiceID: w.svc, OpenID: "oRevoked_1", State: "UNAVAILABLE", OpenOrCloseTime: "2026-11-22T10:00:00+08:00"}}); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b map[string]any)) map[string]any {
		b := createBody("PSRULEX", "oRules_1")
		f(b)
		return b
	}
	items := func(n int) []map[string]any {
		var out []map[string]any
		for i := range n {
			out = append(out, map[string]any{"name": fmt.Sprintf("项目%d", i), "amount": 1})
		}
		return out
	}
	completeWith := func(f func(b map[string]any)) map[string]any {
		b := completeBody(100, 100)
		f(b)
		return b
	}
	tests := []struct {
		name   string
		path   string
		body   any
		status int
		code   string
		msg    string
	}{
		{"malformed JSON", "/payscore/orders", json.RawMessage(`{"out_order_no":`), 400, apigw.CodeInvalidRequest, "JSON"},
		{"unknown field", "/payscore/orders", edit(func(b map[string]any) { b["need_user_confirm"] = true }), 400, apigw.CodeParamError, "need_user_confirm"},
		{"out_order_no charset", "/payscore/orders", edit(func(b map[string]any) { b["out_order_no"] = "PS.1" }), 400, payscore.CodeInvalidOutOrderNo, "PS.1"},
		{"out_order_no length", "/payscore/orders", edit(func(b map[string]any) { b["out_order_no"] = strings.Repeat("9", 33) }), 400, payscore.CodeInvalidOutOrderNo, "1-32"},
		{"openid missing", "/payscore/orders", edit(func(b map[string]any) { delete(b, "openid") }), 400, apigw.CodeParamError, "openid"},
		{"service_introduction missing", "/payscore/orders", edit(func(b map[string]any) { delete(b, "service_introduction") }), 400, apigw.CodeParamError, "service_introduction"},
		{"service_introduction too long", "/payscore/orders", edit(func(b map[string]any) { b["service_introduction"] = strings.Repeat("长", 21) }), 400, payscore.CodeFieldTooLong, "service_introduction"},
		{"attach too long", "/payscore/orders", edit(func(b map[string]any) { b["attach"] = strings.Repeat("a", 257) }), 400, payscore.CodeFieldTooLong, "attach"},
		{"location too long", "/payscore/orders", edit(func(b map[string]any) { b["location"] = map[string]any{"start_location": strings.Repeat("地", 51)} }), 400, payscore.CodeFieldTooLong, "start_location"},
		{"risk_fund missing", "/payscore/orders", edit(func(b map[string]any) { delete(b, "risk_fund") }), 400, apigw.CodeParamError, "risk_fund"},
		{"risk_fund name of 先免", "/payscore/orders", edit(func(b map[string]any) { b["risk_fund"] = map[string]any{"name": "DEPOSIT", "amount": 100} }), 400, payscore.CodeRiskFundName, "ESTIMATE_ORDER_COST"},
		{"risk_fund over the cap", "/payscore/orders", edit(func(b map[string]any) {
			b["risk_fund"] = map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": payscore.DefaultRiskCap + 1}
		}), 400, payscore.CodeOverRiskCap, "risk cap"},
		{"risk_fund zero", "/payscore/orders", edit(func(b map[string]any) { b["risk_fund"] = map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 0} }), 400, payscore.CodeInvalidAmount, "risk_fund.amount"},
		{"risk_fund description too long", "/payscore/orders", edit(func(b map[string]any) {
			b["risk_fund"] = map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 1, "description": strings.Repeat("押", 31)}
		}), 400, payscore.CodeFieldTooLong, "risk_fund.description"},
		{"negative item amount", "/payscore/orders", edit(func(b map[string]any) { b["post_payments"] = []map[string]any{{"name": "费", "amount": -1}} }), 400, payscore.CodeInvalidAmount, ">= 0"},
		{"item count over 100", "/payscore/orders", edit(func(b map[string]any) {
			b["post_payments"] = []map[string]any{{"name": "费", "amount": 1, "count": 101}}
		}), 400, payscore.CodeInvalidAmount, "count"},
		{"duplicate item names", "/payscore/orders", edit(func(b map[string]any) {
			b["post_payments"] = []map[string]any{{"name": "费", "amount": 1}, {"name": "费", "amount": 2}}
		}), 400, apigw.CodeParamError, "unique"},
		{"item name too long", "/payscore/orders", edit(func(b map[string]any) {
			b["post_payments"] = []map[string]any{{"name": strings.Repeat("名", 21), "amount": 1}}
		}), 400, payscore.CodeFieldTooLong, "name"},
		{"101 post_payments", "/payscore/orders", edit(func(b map[string]any) { b["post_payments"] = items(101) }), 400, apigw.CodeParamError, "at most 100"},
		{"31 post_discounts", "/payscore/orders", edit(func(b map[string]any) { b["post_discounts"] = items(31) }), 400, apigw.CodeParamError, "at most 30"},
		{"start_time RFC 3339", "/payscore/orders", edit(func(b map[string]any) { b["time_range"] = map[string]any{"start_time": "2026-11-23T10:00:00+08:00"} }), 400, payscore.CodeInvalidTime, "yyyyMMddHHmmss"},
		{"start_time OnAccept", "/payscore/orders", edit(func(b map[string]any) { b["time_range"] = map[string]any{"start_time": "OnAccept"} }), 400, payscore.CodeInvalidTime, "OnAccept"},
		{"start_time missing", "/payscore/orders", edit(func(b map[string]any) { b["time_range"] = map[string]any{} }), 400, apigw.CodeParamError, "start_time"},
		{"end before start", "/payscore/orders", edit(func(b map[string]any) {
			b["time_range"] = map[string]any{"start_time": "20261123100000", "end_time": "20261123090000"}
		}), 400, payscore.CodeInvalidTime, "before"},
		{"user who revoked", "/payscore/orders", edit(func(b map[string]any) { b["openid"] = "oRevoked_1" }), 403, payscore.CodeUserNotAuthorized, "UNAVAILABLE"},

		{"complete: total != payments - discounts", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) {
			b["post_discounts"] = []map[string]any{{"name": "优惠", "amount": 10}}
		}), 400, payscore.CodeTotalMismatch, "= 90"},
		{"complete: over the risk cap", "/payscore/orders/PSRULE1/complete", completeBody(payscore.DefaultRiskCap+1, payscore.DefaultRiskCap+1), 400, payscore.CodeOverRiskCap, "risk cap"},
		{"complete: no post_payments", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) { delete(b, "post_payments") }), 400, apigw.CodeParamError, "post_payments"},
		{"complete: no total_amount", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) { delete(b, "total_amount") }), 400, apigw.CodeParamError, "total_amount"},
		{"complete: negative amount", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) {
			b["post_payments"] = []map[string]any{{"name": "费", "amount": -5}}
			b["total_amount"] = -5
		}), 400, payscore.CodeInvalidAmount, ">= 0"},
		{"complete: end_time never given", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) { delete(b, "time_range") }), 400, apigw.CodeParamError, "end_time"},
		{"complete: end before start", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) { b["time_range"] = map[string]any{"end_time": "20261123090000"} }), 400, payscore.CodeInvalidTime, "before"},
		{"complete: start_time cannot change", "/payscore/orders/PSRULE1/complete", completeWith(func(b map[string]any) { b["time_range"] = map[string]any{"start_time": "20261123090000"} }), 400, apigw.CodeParamError, "start_time"},
		{"complete: unknown order", "/payscore/orders/PSNOSUCH/complete", completeBody(100, 100), 404, apigw.CodeNotFound, "PSNOSUCH"},
		{"complete: bad out_order_no", "/payscore/orders/PS.1/complete", completeBody(100, 100), 400, payscore.CodeInvalidOutOrderNo, "PS.1"},
		{"modify: not lower", "/payscore/orders/PSRULE2/modify", modifyBody(5000), 400, payscore.CodeAmountNotLower, "only go down"},
		{"modify: higher", "/payscore/orders/PSRULE2/modify", modifyBody(6000), 400, payscore.CodeAmountNotLower, "only go down"},
		{"modify: no reason", "/payscore/orders/PSRULE2/modify", map[string]any{"post_payments": []map[string]any{{"name": "费", "amount": 1}}, "total_amount": 1}, 400, apigw.CodeParamError, "reason"},
		{"modify: reason too long", "/payscore/orders/PSRULE2/modify", map[string]any{"post_payments": []map[string]any{{"name": "费", "amount": 1}}, "total_amount": 1, "reason": strings.Repeat("因", 51)}, 400, payscore.CodeFieldTooLong, "reason"},
		{"modify: total mismatch", "/payscore/orders/PSRULE2/modify", map[string]any{"post_payments": []map[string]any{{"name": "费", "amount": 1}}, "total_amount": 2, "reason": "调"}, 400, payscore.CodeTotalMismatch, "total_amount 2"},
		{"cancel: no reason", "/payscore/orders/PSRULE1/cancel", map[string]any{}, 400, apigw.CodeParamError, "reason"},
		{"sync: another type", "/payscore/orders/PSRULE2/sync", map[string]any{"type": "SYNC_SUCCESSFUL_DONE", "detail": map[string]any{"paid_time": "20261123130000"}}, 400, apigw.CodeParamError, "Order_Paid"},
		{"sync: no paid_time", "/payscore/orders/PSRULE2/sync", map[string]any{"type": "Order_Paid"}, 400, apigw.CodeParamError, "paid_time"},
		{"sync: paid_time format", "/payscore/orders/PSRULE2/sync", map[string]any{"type": "Order_Paid", "detail": map[string]any{"paid_time": "2026-11-23 13:00"}}, 400, payscore.CodeInvalidTime, "yyyyMMdd"},
		{"sync: paid_time in the future", "/payscore/orders/PSRULE2/sync", map[string]any{"type": "Order_Paid", "detail": map[string]any{"paid_time": ledger.PayScoreTime(time.Now().Add(time.Hour))}}, 400, payscore.CodeInvalidTime, "future"},
		{"get: bad out_order_no", "/payscore/orders/PS.1", nil, 400, payscore.CodeInvalidOutOrderNo, "PS.1"},
		{"get: unknown order", "/payscore/orders/PSNOSUCH", nil, 404, apigw.CodeNotFound, "live=true"},
		{"authorization: bad openid", "/payscore/users/o!bad/authorization", nil, 400, apigw.CodeParamError, "openid"},
		{"authorization: unknown code", "/payscore/authorizations/PANOSUCH", nil, 404, apigw.CodeNotFound, "PANOSUCH"},
		{"pre-authorization: bad code", "/payscore/authorizations", map[string]any{"authorization_code": "PA#1"}, 400, apigw.CodeParamError, "authorization_code"},
		{"terminate: reason too long", "/payscore/users/oRules_1/authorization", map[string]any{"reason": strings.Repeat("因", 51)}, 400, payscore.CodeFieldTooLong, "reason"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodPost
			switch {
			case tc.body == nil:
				method = http.MethodGet
			case strings.HasPrefix(tc.path, "/payscore/users/"):
				method = http.MethodDelete
			}
			n := w.wechatCalls()
			st, raw := w.do(t, method, tc.path, tc.body, nil)
			wantError(t, tc.name, st, raw, tc.status, tc.code, tc.msg)
			if got := w.callsSince(n); len(got) != 0 {
				t.Fatalf("%s reached WeChat: %v", tc.name, got)
			}
		})
	}
	// Nothing was recorded for the refused creates.
	var row ledger.PayScoreOrder
	if err := w.Store.Get(context.Background(), ledger.PayScoreOrderKey("PSRULEX"), &row); err == nil {
		t.Fatalf("a refused create left a ledger row: %+v", row)
	}
}

// TestPayScoreNotifyURLRule: a notify_url WeChat would refuse (plain http
// on a public host, a query string) stops the call before WeChat.
func TestPayScoreNotifyURLRule(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oNotify_1", "")
	for _, base := range []string{"http://pay.example.com/notify", "https://pay.example.com/notify?stage=dev&x="} {
		deps := w.Deps
		deps.NotifyBaseURL = base
		srv := httptest.NewServer(frontdoor.New(frontdoor.PayscoreTarget(payscore.New(deps))))
		n := w.wechatCalls()
		st, raw := w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/orders", createBody("PSNOTIFY1", "oNotify_1"), nil)
		wantError(t, "create with notify base "+base, st, raw, http.StatusInternalServerError, payscore.CodeInvalidNotifyURL, "https")
		st, raw = w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/authorizations", nil, nil)
		wantError(t, "pre-authorization with notify base "+base, st, raw, http.StatusInternalServerError, payscore.CodeInvalidNotifyURL, "https")
		srv.Close()
		if got := w.callsSince(n); len(got) != 0 {
			t.Fatalf("notify_url %s: WeChat was called: %v", base, got)
		}
	}
}

// TestPayScoreDepositFreeMode: a handler configured for a 先免 service
// takes DEPOSIT and caps the completion at the create-time
// risk_fund.amount, before WeChat.
func TestPayScoreDepositFreeMode(t *testing.T) {
	w := newPayScoreWorld(t)
	w.setService(t, wxpaysim.PayScoreService{Mode: wxpaysim.PayScoreDepositFree})
	w.authorize(t, "oDeposit_1", "")
	h, err := payscore.NewWithConfig(w.Deps, payscore.Config{Mode: ledger.PayScoreDepositFree, RiskCap: 20000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(frontdoor.New(frontdoor.PayscoreTarget(h)))
	t.Cleanup(srv.Close)
	b := createBody("PSDEP1", "oDeposit_1")
	b["risk_fund"] = map[string]any{"name": "DEPOSIT", "amount": 3000}
	var o psOrder
	if st, raw := w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/orders", b, &o); st != http.StatusCreated || o.State != "DOING" {
		t.Fatalf("DEPOSIT create = %d %s", st, raw)
	}
	n := w.wechatCalls()
	st, raw := w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/orders", createBody("PSDEP2", "oDeposit_1"), nil)
	wantError(t, "ESTIMATE_ORDER_COST in 先免 mode", st, raw, http.StatusBadRequest, payscore.CodeRiskFundName, "DEPOSIT")
	st, raw = w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/orders/PSDEP1/complete", completeBody(3001, 3001), nil)
	wantError(t, "complete above risk_fund.amount", st, raw, http.StatusBadRequest, payscore.CodeOverRiskCap, "risk_fund.amount of 3000")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("refused calls reached WeChat: %v", got)
	}
	if st, raw := w.doAt(t, srv.URL, false, http.MethodPost, "/payscore/orders/PSDEP1/complete", completeBody(3000, 3000), &o); st != http.StatusOK || o.CollectionState != "USER_PAYING" {
		t.Fatalf("complete at risk_fund.amount = %d %s", st, raw)
	}
}

// TestPayScoreIllegalTransitions: every call the state machine refuses
// answers 409 with the current state and never reaches WeChat.
func TestPayScoreIllegalTransitions(t *testing.T) {
	w := newPayScoreWorld(t)
	ctx := context.Background()
	w.authorize(t, "oTrans_1", "")
	w.create(t, "PSTA", "oTrans_1") // DOING/USER_CONFIRM
	w.create(t, "PSTB", "oTrans_1")
	w.complete(t, "PSTB", 5000, 5000) // DOING/MCH_COMPLETE
	w.create(t, "PSTC", "oTrans_1")
	w.complete(t, "PSTC", 5000, 5000)
	paid, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSTC"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(t, paid.NotificationID) // DONE
	w.create(t, "PSTD", "oTrans_1")
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders/PSTD/cancel", cancelBody, nil); st != http.StatusOK {
		t.Fatalf("cancel PSTD = %d %s", st, raw)
	} // REVOKED
	for no, state := range map[string]string{"PSTE": ledger.PayScoreCreating, "PSTF": ledger.PayScoreRejected} {
		if err := w.Store.Put(ctx, &store.Put{Key: ledger.PayScoreOrderKey(no), Value: ledger.PayScoreOrder{OutOrderNo: no, State: state}}); err != nil {
			t.Fatal(err)
		}
	}
	bodies := map[string]any{"complete": completeBody(100, 100), "modify": modifyBody(100), "cancel": cancelBody, "sync": syncBody()}
	tests := []struct {
		no, call, code, state string
	}{
		{"PSTA", "modify", payscore.CodeInvalidOrderState, "DOING/USER_CONFIRM"},
		{"PSTA", "sync", payscore.CodeInvalidOrderState, "DOING/USER_CONFIRM"},
		{"PSTB", "complete", payscore.CodeInvalidOrderState, "DOING/MCH_COMPLETE, collection USER_PAYING"},
		{"PSTB", "cancel", payscore.CodeInvalidOrderState, "DOING/MCH_COMPLETE, collection USER_PAYING"},
		{"PSTC", "complete", payscore.CodeInvalidOrderState, "DONE/USER_PAID"},
		{"PSTC", "modify", payscore.CodeInvalidOrderState, "DONE/USER_PAID"},
		{"PSTC", "cancel", payscore.CodeInvalidOrderState, "DONE/USER_PAID"},
		{"PSTC", "sync", payscore.CodeInvalidOrderState, "DONE/USER_PAID"},
		{"PSTD", "complete", payscore.CodeInvalidOrderState, "REVOKED"},
		{"PSTD", "modify", payscore.CodeInvalidOrderState, "REVOKED"},
		{"PSTD", "cancel", payscore.CodeInvalidOrderState, "REVOKED"},
		{"PSTD", "sync", payscore.CodeInvalidOrderState, "REVOKED"},
		{"PSTE", "complete", payscore.CodeOrderPending, "not been confirmed"},
		{"PSTE", "modify", payscore.CodeOrderPending, "not been confirmed"},
		{"PSTE", "cancel", payscore.CodeOrderPending, "not been confirmed"},
		{"PSTE", "sync", payscore.CodeOrderPending, "not been confirmed"},
		{"PSTF", "complete", payscore.CodeInvalidOrderState, "REJECTED"},
		{"PSTF", "modify", payscore.CodeInvalidOrderState, "REJECTED"},
		{"PSTF", "cancel", payscore.CodeInvalidOrderState, "REJECTED"},
		{"PSTF", "sync", payscore.CodeInvalidOrderState, "REJECTED"},
	}
	for _, tc := range tests {
		t.Run(tc.no+" "+tc.call, func(t *testing.T) {
			n := w.wechatCalls()
			st, raw := w.do(t, http.MethodPost, "/payscore/orders/"+tc.no+"/"+tc.call, bodies[tc.call], nil)
			wantError(t, tc.call+" on "+tc.no, st, raw, http.StatusConflict, tc.code, tc.state)
			if got := w.callsSince(n); len(got) != 0 {
				t.Fatalf("%s on %s reached WeChat: %v", tc.call, tc.no, got)
			}
		})
	}
	// A legal call while another holds the order's lease: ORDER_BUSY.
	if err := w.Store.Update(ctx, &store.Update{Key: ledger.PayScoreOrderKey("PSTA"),
		Set: map[string]any{"lease_until": ledger.WechatTime(time.Now().Add(time.Minute)) + "#other"}}); err != nil {
		t.Fatal(err)
	}
	n := w.wechatCalls()
	st, raw := w.do(t, http.MethodPost, "/payscore/orders/PSTA/cancel", cancelBody, nil)
	wantError(t, "cancel while leased", st, raw, http.StatusConflict, payscore.CodeOrderBusy, "in flight")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("a leased order reached WeChat: %v", got)
	}
}

// TestPayScoreIdempotentCreate: the same request replays the stored result,
// a different one under the same out_order_no is refused, and an unknown
// outcome is settled by a query before anything is created again.
func TestPayScoreIdempotentCreate(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oIdem_1", "")
	first := w.create(t, "PSIDEM1", "oIdem_1")

	n := w.wechatCalls()
	var again psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM1", "oIdem_1"), &again); st != http.StatusOK ||
		!again.Replayed || again.OrderID != first.OrderID {
		t.Fatalf("same request again = %d %s, want 200 replayed %s", st, raw, first.OrderID)
	}
	changed := createBody("PSIDEM1", "oIdem_1")
	changed["service_introduction"] = "另一个服务"
	st, raw := w.do(t, http.MethodPost, "/payscore/orders", changed, nil)
	wantError(t, "different request, same out_order_no", st, raw, http.StatusConflict, payscore.CodeOutOrderNoReused, "PSIDEM1")
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("replay and conflict reached WeChat: %v", got)
	}

	t.Run("timeout, order not created: query, then the retry creates", func(t *testing.T) {
		// WeChat fails the create three times (the client's attempts).
		w.Sim.SetFault(wxpaysim.Fault{MchID: w.mch, PathPrefix: "/v3/payscore/serviceorder", Kind: wxpaysim.KindError, Status: 500, Count: 3})
		n := w.wechatCalls()
		st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM2", "oIdem_1"), nil)
		wantError(t, "create during an outage", st, raw, http.StatusServiceUnavailable, payscore.CodeTryAgain, "retry the same request")
		want := []string{"POST /v3/payscore/serviceorder", "POST /v3/payscore/serviceorder", "POST /v3/payscore/serviceorder", "GET /v3/payscore/serviceorder"}
		if got := w.callsSince(n); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("calls = %v, want %v (query after the unknown outcome)", got, want)
		}
		var row ledger.PayScoreOrder
		if err := w.Store.Get(context.Background(), ledger.PayScoreOrderKey("PSIDEM2"), &row); err != nil || row.State != ledger.PayScoreCreating {
			t.Fatalf("row after the outage = %+v (%v), want CREATING", row, err)
		}
		n = w.wechatCalls()
		var o psOrder
		if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM2", "oIdem_1"), &o); st != http.StatusCreated || o.State != "DOING" {
			t.Fatalf("retry = %d %s, want 201 DOING", st, raw)
		}
		want = []string{"GET /v3/payscore/serviceorder", "POST /v3/payscore/serviceorder"}
		if got := w.callsSince(n); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("retry calls = %v, want %v (query before retrying)", got, want)
		}
	})

	t.Run("answer lost, order created: the query finds it, no second create", func(t *testing.T) {
		w.Sim.SetFault(wxpaysim.Fault{MchID: w.mch, PathPrefix: "/v3/payscore/serviceorder", Kind: wxpaysim.KindBadResponseSignature, Count: 1})
		n := w.wechatCalls()
		var o psOrder
		if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM3", "oIdem_1"), &o); st != http.StatusCreated || o.State != "DOING" || o.OrderID == "" {
			t.Fatalf("create with a lost answer = %d %s, want 201 DOING from the query", st, raw)
		}
		want := []string{"POST /v3/payscore/serviceorder", "GET /v3/payscore/serviceorder"}
		if got := w.callsSince(n); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("calls = %v, want %v", got, want)
		}
	})

	t.Run("answer and query lost: the retry queries and replays", func(t *testing.T) {
		w.Sim.SetFault(wxpaysim.Fault{MchID: w.mch, PathPrefix: "/v3/payscore/serviceorder", Kind: wxpaysim.KindBadResponseSignature, Count: 2})
		st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM4", "oIdem_1"), nil)
		wantError(t, "create with answer and query lost", st, raw, http.StatusServiceUnavailable, payscore.CodeTryAgain, "could not be queried")
		n := w.wechatCalls()
		var o psOrder
		if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSIDEM4", "oIdem_1"), &o); st != http.StatusOK || !o.Replayed || o.State != "DOING" {
			t.Fatalf("retry = %d %s, want 200 replayed DOING", st, raw)
		}
		if got := w.callsSince(n); strings.Join(got, ",") != "GET /v3/payscore/serviceorder" {
			t.Fatalf("retry calls = %v, want only the query", got)
		}
	})
}

// TestPayScoreMissedCallbackSweep: WeChat deducts but the callback is lost;
// the scheduled sweep finds the order after the configured age and settles
// it. Orders settled by their callback leave the sweep without a query;
// orders still being deducted are looked at again later.
func TestPayScoreMissedCallbackSweep(t *testing.T) {
	w := newPayScoreWorld(t)
	ctx := context.Background()
	w.authorize(t, "oSweep_1", "")
	for _, no := range []string{"PSSWEEP1", "PSSWEEP2", "PSSWEEP3"} {
		w.create(t, no, "oSweep_1")
		w.complete(t, no, 1200, 1200)
	}
	dropped, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSSWEEP1", DropCallback: true})
	if err != nil || dropped.NotificationID != "" {
		t.Fatalf("deduction with a dropped callback = %+v, %v", dropped, err)
	}
	delivered, err := w.Sim.DeductPayScore(ctx, wxpaysim.PayScoreDeduction{MchID: w.mch, OutOrderNo: "PSSWEEP2"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(t, delivered.NotificationID)
	if got := w.order(t, "PSSWEEP1"); got.State != "DOING" || got.CollectionState != "USER_PAYING" {
		t.Fatalf("before the sweep: %+v, want still USER_PAYING (the callback was lost)", got)
	}

	sweep := func(offset time.Duration) payscore.SweepResult {
		t.Helper()
		deps := w.Deps
		deps.Now = func() time.Time { return time.Now().Add(offset) }
		out, err := payscore.New(deps).Handle(ctx, payscore.Event{Schedule: &payscore.ScheduleInput{Job: payscore.JobSweep,
			ScheduledTime: time.Now().UTC().Format(time.RFC3339)}})
		if err != nil {
			t.Fatalf("sweep at +%v: %v", offset, err)
		}
		res, ok := out.(*payscore.SweepResult)
		if !ok {
			t.Fatalf("sweep returned %T", out)
		}
		return *res
	}
	// Younger than the 4 h default: nothing is looked at.
	n := w.wechatCalls()
	if res := sweep(0); res.Checked != 0 || res.AlreadySettled != 0 {
		t.Fatalf("sweep now = %+v, want nothing (orders are younger than %v)", res, payscore.DefaultSweepAge)
	}
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("an early sweep called WeChat: %v", got)
	}
	n = w.wechatCalls()
	res := sweep(payscore.DefaultSweepAge + time.Minute)
	// The order whose callback arrived was filed under its paid day by the
	// notify function, which also took it out of the sweep's partition: the
	// sweep never sees it.
	if res.Checked != 2 || res.Settled != 1 || res.AlreadySettled != 0 || res.StillPaying != 1 || res.Failed != 0 {
		t.Fatalf("sweep after 4 h = %+v, want 2 checked (1 settled, 1 still paying), none already settled", res)
	}
	if got := w.callsSince(n); len(got) != 2 {
		t.Fatalf("sweep calls = %v, want one query per unsettled order", got)
	}
	got := w.order(t, "PSSWEEP1")
	if got.State != "DONE" || got.StateDescription != "USER_PAID" || got.TransactionID != dropped.TransactionID || got.PaidAmount != 1200 {
		t.Fatalf("after the sweep: %+v, want DONE/USER_PAID with transaction %s", got, dropped.TransactionID)
	}
	// Applied once, by the sweep: the application counter and the one
	// PAYSCORE.USER_PAID domain event the lost callback would have brought.
	var row map[string]any
	if err := w.Store.Get(ctx, ledger.PayScoreOrderKey("PSSWEEP1"), &row); err != nil || row[ledger.AppliedAttr(ledger.EventPayScorePaid)] != float64(1) {
		t.Errorf("PSSWEEP1 applied counter = %v (%v), want 1", row[ledger.AppliedAttr(ledger.EventPayScorePaid)], err)
	}
	if ids := outboxIDs(ctx, t, w.world, ledger.EventPayScorePaid, `"out_order_no":"PSSWEEP1"`); len(ids) != 1 || !strings.HasPrefix(ids[0], "query:") {
		t.Errorf("domain events of PSSWEEP1's payment: %v, want exactly one from the sweep", ids)
	}
	// Again right away: the settled orders are gone from the sweep's
	// partition and the one still paying waits another SweepAge.
	n = w.wechatCalls()
	if res := sweep(payscore.DefaultSweepAge + 2*time.Minute); res.Checked != 0 || res.AlreadySettled != 0 {
		t.Fatalf("second sweep = %+v, want nothing left", res)
	}
	if got := w.callsSince(n); len(got) != 0 {
		t.Fatalf("second sweep called WeChat: %v", got)
	}
	// A shorter configured age: an order completed a minute ago is
	// already looked at.
	w.create(t, "PSSWEEP4", "oSweep_1")
	w.complete(t, "PSSWEEP4", 800, 800)
	deps := w.Deps
	deps.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	short, err := payscore.NewWithConfig(deps, payscore.Config{SweepAge: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := short.Sweep(ctx); err != nil || res.Checked != 1 || res.StillPaying != 1 {
		t.Fatalf("sweep with SweepAge 1m = %+v, %v; want PSSWEEP4 checked and still paying", res, err)
	}
	var settled []ledger.PayScoreOrder
	day := ledger.Day(time.Now())
	if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.DayIndex(ledger.PayScoreDayKind, day)}, &settled); err != nil || len(settled) != 2 {
		t.Fatalf("day index %s = %+v (%v), want the two settled orders", day, settled, err)
	}
}

// TestPayScoreFAQErrors: the guide's FAQ errors, produced by the simulator,
// reach the app as specific, explained answers.
func TestPayScoreFAQErrors(t *testing.T) {
	w := newPayScoreWorld(t)
	w.authorize(t, "oFAQ_1", "")
	tests := []struct {
		name   string
		setup  func(t *testing.T)
		status int
		code   string
		msg    string
	}{
		{"NO_AUTH: the service has no no-confirm permission", func(t *testing.T) { w.setService(t, wxpaysim.PayScoreService{NeedConfirm: true}) },
			http.StatusForbidden, payscore.CodeNoAuth, "商户暂无权限使用此服务"},
		{"risk_fund name: the service is in 先免 mode", func(t *testing.T) { w.setService(t, wxpaysim.PayScoreService{Mode: wxpaysim.PayScoreDepositFree}) },
			http.StatusBadRequest, payscore.CodeRiskFundName, "订单风险金额名称不符合要求"},
		{"综合评估不通过", func(t *testing.T) {
			w.setService(t, wxpaysim.PayScoreService{})
			if err := w.Sim.SetPayScoreRiskRejection(w.mch, "oFAQ_1", 1); err != nil {
				t.Fatal(err)
			}
		}, http.StatusUnprocessableEntity, payscore.CodeRiskRejected, "综合评估不通过"},
		{"appid not bound", func(t *testing.T) { w.setService(t, wxpaysim.PayScoreService{AppIDs: []string{"wxanotherapp0001"}}) },
			http.StatusForbidden, payscore.CodeAppIDNotBound, "mch_id和AppID未绑定"},
		{"unfinished orders", func(t *testing.T) { w.setService(t, wxpaysim.PayScoreService{MaxOpenOrders: 1}) },
			http.StatusConflict, payscore.CodeUserHasOpenOrders, "存在未完结订单"},
	}
	w.setService(t, wxpaysim.PayScoreService{})
	w.create(t, "PSFAQ0", "oFAQ_1") // one open order for the last case
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			no := fmt.Sprintf("PSFAQ%d", i+1)
			st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody(no, "oFAQ_1"), nil)
			wantError(t, tc.name, st, raw, tc.status, tc.code, tc.msg)
			var row ledger.PayScoreOrder
			if err := w.Store.Get(context.Background(), ledger.PayScoreOrderKey(no), &row); err != nil || row.State != ledger.PayScoreRejected || row.LastError == "" {
				t.Fatalf("row after the refusal = %+v (%v), want REJECTED with the error", row, err)
			}
		})
	}
	// After the one-shot risk rejection the same request goes through.
	w.setService(t, wxpaysim.PayScoreService{})
	var o psOrder
	if st, raw := w.do(t, http.MethodPost, "/payscore/orders", createBody("PSFAQ3", "oFAQ_1"), &o); st != http.StatusCreated || o.State != "DOING" {
		t.Fatalf("retrying the risk-rejected request = %d %s, want 201 DOING", st, raw)
	}
}

// outboxPublisher records published domain events, or fails every publish.
type outboxPublisher struct {
	fail bool
	ids  map[string]int
}

func (p *outboxPublisher) Publish(_ context.Context, evs []domainevent.Event) error {
	if p.fail {
		return errors.New("EventBridge unavailable (test)")
	}
	for _, ev := range evs {
		p.ids[ev.ID]++
	}
	return nil
}

// TestPayScoreSweepDrainsOutbox: domain events whose publish failed at
// commit time wait in the outbox; the scheduled sweep publishes them (in
// batches, oldest first) and removes them. While EventBridge fails, the
// sweep still succeeds, reports the failure and leaves every event in
// place for the next run.
func TestPayScoreSweepDrainsOutbox(t *testing.T) {
	w := newPayScoreWorld(t)
	ctx := context.Background()
	const n = 230 // more than two drain batches
	now := time.Now()
	for i := range n {
		ev := domainevent.Event{ID: fmt.Sprintf("evt-%04d", i), DetailType: "TRANSACTION.SUCCESS",
			Detail: json.RawMessage(`{"out_trade_no":"ORD` + fmt.Sprint(i) + `"}`), CreatedAt: ledger.WechatTime(now.Add(time.Duration(i) * time.Millisecond))}
		if err := w.Deps.Store.Transact(ctx, domainevent.OutboxPut(ev, now)); err != nil {
			t.Fatal(err)
		}
	}
	pending := func() int {
		t.Helper()
		var evs []domainevent.Event
		cursor := ""
		total := 0
		for {
			next, err := w.Deps.Store.Query(ctx, store.Query{Index: true, PK: ledger.OutboxIndex, Cursor: cursor}, &evs)
			if err != nil {
				t.Fatal(err)
			}
			total += len(evs)
			if next == "" {
				return total
			}
			cursor = next
		}
	}
	sweep := func(pub *outboxPublisher) payscore.SweepResult {
		t.Helper()
		deps := w.Deps
		deps.Events = pub
		res, err := payscore.New(deps).Sweep(ctx)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		return *res
	}

	down := &outboxPublisher{fail: true}
	if res := sweep(down); res.OutboxPublished != 0 || !strings.Contains(res.OutboxError, "EventBridge unavailable") {
		t.Fatalf("sweep with EventBridge down = %+v, want 0 published and the error reported", res)
	}
	if got := pending(); got != n {
		t.Fatalf("after a failed drain %d events wait in the outbox, want all %d", got, n)
	}
	up := &outboxPublisher{ids: map[string]int{}}
	if res := sweep(up); res.OutboxPublished != n || res.OutboxError != "" {
		t.Fatalf("sweep = %+v, want %d published", res, n)
	}
	if got := pending(); got != 0 {
		t.Fatalf("%d events left in the outbox after the drain", got)
	}
	for i := range n {
		if id := fmt.Sprintf("evt-%04d", i); up.ids[id] != 1 {
			t.Fatalf("event %s published %d times, want once", id, up.ids[id])
		}
	}
	if res := sweep(up); res.OutboxPublished != 0 {
		t.Fatalf("a second drain published %d events, want none", res.OutboxPublished)
	}
}
