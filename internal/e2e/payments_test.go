package e2e_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/wechatpay-apiv3/wechatpay-go/core/auth/signers"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

const payOpenID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

// payOrderBody is a valid POST /payments/orders body.
func payOrderBody(tradeType, no string, total int64) map[string]any {
	b := map[string]any{"trade_type": tradeType, "out_trade_no": no, "description": "Image形象店-深圳腾大-QQ公仔",
		"amount": map[string]any{"total": total, "currency": "CNY"}}
	switch tradeType {
	case "JSAPI", "MINIPROGRAM":
		b["payer"] = map[string]any{"openid": payOpenID}
	case "H5":
		b["scene_info"] = map[string]any{"payer_client_ip": "203.0.113.7", "h5_info": map[string]any{"type": "Wap"}}
	}
	return b
}

// payRaw sends a raw body through the front door; it returns the status and
// the raw answer.
func (w *world) payRaw(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, w.FrontURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	token, err := w.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkAPI(t, method, path, []byte(body), resp, raw)
	return resp.StatusCode, raw
}

// payCall sends in as JSON and decodes a 2xx answer into out and anything
// else into the error body.
func (w *world) payCall(t *testing.T, method, path string, in, out any) (int, apigw.ErrorBody) {
	t.Helper()
	body := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body = string(b)
	}
	status, raw := w.payRaw(t, method, path, body)
	var e apigw.ErrorBody
	if status >= 200 && status < 300 {
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatalf("%s %s: %d %s: %v", method, path, status, raw, err)
			}
		}
	} else if err := json.Unmarshal(raw, &e); err != nil || e.Code == "" || e.Message == "" {
		t.Fatalf("%s %s: %d %s is not a {code, message} error (%v)", method, path, status, raw, err)
	}
	return status, e
}

// payCreate creates an order through POST /payments/orders.
func (w *world) payCreate(t *testing.T, body map[string]any) payments.OrderView {
	t.Helper()
	var v payments.OrderView
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders", body, &v); st != http.StatusOK {
		t.Fatalf("create order %v: %d %+v", body, st, e)
	}
	return v
}

// payGetOrder reads an order through the route (query "" or "?live=true").
func (w *world) payGetOrder(t *testing.T, no, query string) payments.OrderView {
	t.Helper()
	var v payments.OrderView
	if st, e := w.payCall(t, http.MethodGet, "/payments/orders/"+no+query, nil, &v); st != http.StatusOK {
		t.Fatalf("get order %s%s: %d %+v", no, query, st, e)
	}
	return v
}

// payPaid creates an order through the route, has the simulated user pay it
// with promos and waits until TRANSACTION.SUCCESS was acknowledged.
func (w *world) payPaid(t *testing.T, tradeType, no string, total int64, promos ...wxpaysim.Promotion) payments.OrderView {
	t.Helper()
	w.payCreate(t, payOrderBody(tradeType, no, total))
	res, err := w.Sim.PayOrder(context.Background(), wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: no, Promotions: promos})
	if err != nil {
		t.Fatalf("PayOrder(%s): %v", no, err)
	}
	if ds := w.waitDeliveries(t, res.NotificationID, 1); !ds[0].Acked {
		t.Fatalf("TRANSACTION.SUCCESS of %s not acknowledged: %+v", no, ds[0])
	}
	return w.payGetOrder(t, no, "")
}

// payRefund asks for a refund; it returns the refund (2xx) or the error.
func (w *world) payRefund(t *testing.T, body map[string]any) (payments.RefundView, int, apigw.ErrorBody) {
	t.Helper()
	var v payments.RefundView
	st, e := w.payCall(t, http.MethodPost, "/payments/refunds", body, &v)
	return v, st, e
}

func (w *world) payGetRefund(t *testing.T, no, query string) payments.RefundView {
	t.Helper()
	var v payments.RefundView
	if st, e := w.payCall(t, http.MethodGet, "/payments/refunds/"+no+query, nil, &v); st != http.StatusOK {
		t.Fatalf("get refund %s%s: %d %+v", no, query, st, e)
	}
	return v
}

// payEvents waits until n notifications of eventType were acknowledged and
// returns their delivery records, oldest first.
func (w *world) payEvents(t *testing.T, eventType string, n int) []wxpaysim.DeliveryRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var acked []wxpaysim.DeliveryRecord
		for _, d := range w.Sim.Deliveries() {
			if d.EventType == eventType && d.Acked {
				acked = append(acked, d)
			}
		}
		if len(acked) >= n {
			return acked
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged %s deliveries after 20s, want %d: %+v", len(acked), eventType, n, w.Sim.Deliveries())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// paySimCalls counts the simulator's /v3/ requests whose path starts with prefix.
func (w *world) paySimCalls(prefix string) int {
	n := 0
	for _, r := range w.Sim.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// verifyMerchantSignature checks sig over message with the merchant's key
// two independent ways: crypto/rsa verification with the public key, and
// wechatpay-go's own signer (PKCS #1 v1.5 is deterministic, so the SDK's
// signature of the same message must be byte-identical).
func verifyMerchantSignature(t *testing.T, w *world, message, sig string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		t.Fatalf("signature %q is not base64: %v", sig, err)
	}
	digest := sha256.Sum256([]byte(message))
	if err := rsa.VerifyPKCS1v15(&w.Merchant.Key.PublicKey, crypto.SHA256, digest[:], raw); err != nil {
		t.Errorf("signature does not verify over %q with the merchant public key: %v", message, err)
	}
	s := &signers.SHA256WithRSASigner{MchID: w.Merchant.MchID, CertificateSerialNo: w.Merchant.CertSerial, PrivateKey: w.Merchant.Key}
	res, err := s.Sign(context.Background(), message)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signature != sig {
		t.Errorf("signature over %q = %s, wechatpay-go signs %s", message, sig, res.Signature)
	}
}

// TestPaymentsCreateOrderEveryTradeType: each client type reaches its
// WeChat Pay endpoint and answers what the client needs, with the RSA-signed
// requestPayment parameters for JSAPI and mini-programs and the APP SDK's.
func TestPaymentsCreateOrderEveryTradeType(t *testing.T) {
	w := newWorld(t, stackOptions())
	tests := []struct {
		clientType, endpoint, tradeType string
	}{
		{"JSAPI", "/v3/pay/transactions/jsapi", "JSAPI"},
		{"MINIPROGRAM", "/v3/pay/transactions/jsapi", "JSAPI"},
		{"NATIVE", "/v3/pay/transactions/native", "NATIVE"},
		{"APP", "/v3/pay/transactions/app", "APP"},
		{"H5", "/v3/pay/transactions/h5", "MWEB"},
	}
	for i, tc := range tests {
		t.Run(tc.clientType, func(t *testing.T) {
			no := fmt.Sprintf("PAYTYPE%d%s", i, tc.clientType)
			before := len(w.Sim.Requests())
			v := w.payCreate(t, payOrderBody(tc.clientType, no, 551))
			reqs := w.Sim.Requests()[before:]
			if len(reqs) != 1 || reqs[0].Path != tc.endpoint || reqs[0].Status != http.StatusOK {
				t.Fatalf("simulator saw %+v, want one POST %s", reqs, tc.endpoint)
			}
			var sent map[string]any
			_ = json.Unmarshal(reqs[0].Body, &sent)
			if sent["notify_url"] != w.FrontURL+"/notify/payments" || sent["mchid"] != w.Merchant.MchID || sent["appid"] != w.Merchant.AppID {
				t.Errorf("prepay body %s: want notify_url %s/notify/payments, mchid and appid", reqs[0].Body, w.FrontURL)
			}
			if v.Status != "NOTPAY" || v.Amount.Total != 551 || v.Amount.PayerTotal != 551 || v.TradeType != tc.tradeType || v.ClientType != tc.clientType {
				t.Errorf("answer %+v, want NOTPAY 551 trade_type %s", v, tc.tradeType)
			}
			switch tc.clientType {
			case "JSAPI", "MINIPROGRAM":
				rp := v.RequestPayment
				if rp == nil || !strings.HasPrefix(v.PrepayID, "wx") || rp.Package != "prepay_id="+v.PrepayID || rp.SignType != "RSA" ||
					rp.AppID != w.Merchant.AppID || len(rp.NonceStr) != 32 {
					t.Fatalf("request_payment %+v (prepay_id %s), want appId, package prepay_id=..., RSA, a 32-char nonce", rp, v.PrepayID)
				}
				ts, err := strconv.ParseInt(rp.TimeStamp, 10, 64)
				if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
					t.Errorf("timeStamp %q is not the current unix time in seconds", rp.TimeStamp)
				}
				verifyMerchantSignature(t, w, rp.AppID+"\n"+rp.TimeStamp+"\n"+rp.NonceStr+"\n"+rp.Package+"\n", rp.PaySign)
			case "APP":
				ap := v.AppPayment
				if ap == nil || ap.PrepayID != v.PrepayID || ap.PartnerID != w.Merchant.MchID || ap.Package != "Sign=WXPay" || ap.AppID != w.Merchant.AppID {
					t.Fatalf("app_payment %+v, want appid, partnerid = mchid, prepayid, Sign=WXPay", ap)
				}
				verifyMerchantSignature(t, w, ap.AppID+"\n"+ap.TimeStamp+"\n"+ap.NonceStr+"\n"+ap.PrepayID+"\n", ap.Sign)
			case "NATIVE":
				if !strings.HasPrefix(v.CodeURL, "weixin://wxpay/bizpayurl?pr=") || v.RequestPayment != nil {
					t.Errorf("native answer %+v, want a code_url and no request_payment", v)
				}
			case "H5":
				if !strings.Contains(v.H5URL, "prepay_id=") {
					t.Errorf("h5 answer %+v, want an h5_url", v)
				}
			}
			var row ledger.PaymentOrder
			if err := w.Store.Get(context.Background(), ledger.OrderKey(no), &row); err != nil || row.Status != ledger.TradeNotPay ||
				row.PrepayState != "READY" || row.Total != 551 || row.ClientType != tc.clientType {
				t.Errorf("stored order %+v (%v), want NOTPAY READY 551", row, err)
			}
		})
	}
}

// TestPaymentsCreateOrderIdempotent: the same request replays the stored
// answer without calling WeChat Pay; another request under the same
// out_trade_no is a 409; a prepay that failed midway resumes on the replay;
// a prepay WeChat Pay refused leaves nothing behind.
func TestPaymentsCreateOrderIdempotent(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	body := payOrderBody("JSAPI", "PAYIDEM01", 551)
	_, first := w.payRaw(t, http.MethodPost, "/payments/orders", mustMarshal(t, body))
	calls := w.paySimCalls("/v3/pay/transactions")
	st, again := w.payRaw(t, http.MethodPost, "/payments/orders", mustMarshal(t, body))
	if st != http.StatusOK || !bytes.Equal(first, again) {
		t.Fatalf("replay: %d %s, want 200 and the first answer %s byte for byte", st, again, first)
	}
	if got := w.paySimCalls("/v3/pay/transactions"); got != calls {
		t.Fatalf("replay called WeChat Pay: %d prepay calls, want %d", got, calls)
	}
	changed := payOrderBody("JSAPI", "PAYIDEM01", 552)
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders", changed, nil); st != http.StatusConflict || e.Code != apigw.CodeConflict {
		t.Fatalf("same out_trade_no, other amount: %d %+v, want 409 CONFLICT", st, e)
	}
	var row ledger.PaymentOrder
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYIDEM01"), &row); err != nil || row.Total != 551 || w.paySimCalls("/v3/pay/transactions") != calls {
		t.Fatalf("after the conflict: stored %+v (%v), %d calls; want 551 untouched and no WeChat call", row, err, w.paySimCalls("/v3/pay/transactions"))
	}

	// WeChat Pay fails three times (every attempt of the client): the order
	// is stored PENDING, and the replay resumes it.
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "/v3/pay/transactions/native", Kind: wxpaysim.KindError, Count: 3})
	resume := payOrderBody("NATIVE", "PAYIDEM02", 100)
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders", resume, nil); st != http.StatusServiceUnavailable || e.Code != payments.CodeTryAgain {
		t.Fatalf("prepay failing: %d %+v, want 503 TRY_AGAIN", st, e)
	}
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYIDEM02"), &row); err != nil || row.PrepayState != "PENDING" {
		t.Fatalf("failed prepay: stored %+v (%v), want the order PENDING (stored before WeChat was called)", row, err)
	}
	if v := w.payCreate(t, resume); !strings.HasPrefix(v.CodeURL, "weixin://") {
		t.Fatalf("replay after the failure: %+v, want the code_url", v)
	}

	// WeChat Pay refuses: nothing is kept.
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "/v3/pay/transactions/app", Kind: wxpaysim.KindError,
		Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Count: 1})
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders", payOrderBody("APP", "PAYIDEM03", 100), nil); st != http.StatusBadRequest || e.Code != "INVALID_REQUEST" {
		t.Fatalf("refused prepay: %d %+v, want 400 INVALID_REQUEST", st, e)
	}
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYIDEM03"), &row); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused prepay left %+v (%v), want nothing", row, err)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPaymentsRejectBadOrderInput: every invalid create is a 4xx with
// {code, message}, writes nothing and never reaches WeChat Pay.
func TestPaymentsRejectBadOrderInput(t *testing.T) {
	w := newWorld(t, stackOptions())
	edit := func(tradeType string, f func(b map[string]any)) string {
		b := payOrderBody(tradeType, "PAYBAD0001", 551)
		f(b)
		return mustMarshal(t, b)
	}
	tests := []struct {
		name, body string
		code       string
	}{
		{"zero total", edit("NATIVE", func(b map[string]any) { b["amount"] = map[string]any{"total": 0} }), apigw.CodeParamError},
		{"negative total", edit("NATIVE", func(b map[string]any) { b["amount"] = map[string]any{"total": -551} }), apigw.CodeParamError},
		{"yuan instead of fen", `{"trade_type":"NATIVE","out_trade_no":"PAYBAD0001","description":"x","amount":{"total":5.51}}`, apigw.CodeParamError},
		{"no trade_type", edit("NATIVE", func(b map[string]any) { delete(b, "trade_type") }), apigw.CodeParamError},
		{"unknown trade_type", edit("NATIVE", func(b map[string]any) { b["trade_type"] = "MICROPAY" }), apigw.CodeParamError},
		{"JSAPI without openid", edit("JSAPI", func(b map[string]any) { delete(b, "payer") }), apigw.CodeParamError},
		{"payer on a native order", edit("NATIVE", func(b map[string]any) { b["payer"] = map[string]any{"openid": payOpenID} }), apigw.CodeParamError},
		{"short out_trade_no", edit("NATIVE", func(b map[string]any) { b["out_trade_no"] = "abc" }), apigw.CodeParamError},
		{"out_trade_no with a space", edit("NATIVE", func(b map[string]any) { b["out_trade_no"] = "PAY BAD 01" }), apigw.CodeParamError},
		{"no description", edit("NATIVE", func(b map[string]any) { b["description"] = "" }), apigw.CodeParamError},
		{"foreign appid", edit("NATIVE", func(b map[string]any) { b["appid"] = "wxnotours00000000" }), apigw.CodeParamError},
		{"currency", edit("NATIVE", func(b map[string]any) { b["amount"] = map[string]any{"total": 551, "currency": "USD"} }), apigw.CodeParamError},
		{"H5 without client ip", edit("H5", func(b map[string]any) { delete(b, "scene_info") }), apigw.CodeParamError},
		{"H5 with a bad ip", edit("H5", func(b map[string]any) { b["scene_info"] = map[string]any{"payer_client_ip": "999.1.1.1"} }), apigw.CodeParamError},
		{"expired time_expire", edit("NATIVE", func(b map[string]any) { b["time_expire"] = "2020-01-01T00:00:00+08:00" }), apigw.CodeParamError},
		{"time_expire not RFC 3339", edit("NATIVE", func(b map[string]any) { b["time_expire"] = "2030-01-01 00:00:00" }), apigw.CodeParamError},
		{"unknown field", edit("NATIVE", func(b map[string]any) { b["total_fee"] = 551 }), apigw.CodeParamError},
		{"empty body", "", apigw.CodeInvalidRequest},
		{"malformed JSON", `{"trade_type":`, apigw.CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.Sim.Requests())
			st, raw := w.payRaw(t, http.MethodPost, "/payments/orders", tc.body)
			var e apigw.ErrorBody
			_ = json.Unmarshal(raw, &e)
			if st != http.StatusBadRequest || e.Code != tc.code || e.Message == "" {
				t.Fatalf("POST /payments/orders %s: %d %s, want 400 %s", tc.body, st, raw, tc.code)
			}
			if n := len(w.Sim.Requests()); n != before {
				t.Errorf("WeChat Pay was called %d times for a rejected request", n-before)
			}
			var row ledger.PaymentOrder
			for _, no := range []string{"PAYBAD0001", "abc", "PAY BAD 01"} {
				if err := w.Store.Get(context.Background(), ledger.OrderKey(no), &row); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("order %s written for a rejected request: %+v (%v)", no, row, err)
				}
			}
		})
	}
}

// TestPaymentsCloseOrder: only unpaid orders close; the others are 409/404
// without a WeChat Pay call; an order WeChat Pay says is paid is recorded
// paid and refused.
func TestPaymentsCloseOrder(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payCreate(t, payOrderBody("NATIVE", "PAYCLOSE01", 100))
	var v payments.OrderView
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders/PAYCLOSE01/close", nil, &v); st != http.StatusOK || v.Status != "CLOSED" {
		t.Fatalf("close: %d %+v %+v, want 200 CLOSED", st, v, e)
	}
	var sim struct {
		TradeState string `json:"trade_state"`
	}
	if _, err := w.Client.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: "/v3/pay/transactions/out-trade-no/PAYCLOSE01",
		Query: map[string][]string{"mchid": {w.Merchant.MchID}}}, &sim); err != nil || sim.TradeState != "CLOSED" {
		t.Fatalf("simulator trade_state %q (%v), want CLOSED", sim.TradeState, err)
	}
	if _, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: "PAYCLOSE01"}); !errors.Is(err, wxpaysim.ErrOrderState) {
		t.Fatalf("paying a closed order: %v, want ErrOrderState", err)
	}
	w.payPaid(t, "NATIVE", "PAYCLOSE02", 100)
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"already closed", "/payments/orders/PAYCLOSE01/close", "", http.StatusConflict, payments.CodeOrderClosed},
		{"paid", "/payments/orders/PAYCLOSE02/close", "", http.StatusConflict, payments.CodeOrderPaid},
		{"unknown", "/payments/orders/PAYNOSUCH1/close", "", http.StatusNotFound, apigw.CodeNotFound},
		{"bad number", "/payments/orders/abc/close", "", http.StatusBadRequest, apigw.CodeParamError},
		{"unexpected body", "/payments/orders/PAYCLOSE02/close", `{"reason":"x"}`, http.StatusBadRequest, apigw.CodeParamError},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.Sim.Requests())
			st, raw := w.payRaw(t, http.MethodPost, tc.path, tc.body)
			var e apigw.ErrorBody
			_ = json.Unmarshal(raw, &e)
			if st != tc.status || e.Code != tc.code {
				t.Fatalf("POST %s: %d %s, want %d %s", tc.path, st, raw, tc.status, tc.code)
			}
			if n := len(w.Sim.Requests()); n != before {
				t.Errorf("WeChat Pay was called for a refused close")
			}
		})
	}
	var o ledger.PaymentOrder
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYCLOSE02"), &o); err != nil || o.Status != ledger.TradeSuccess {
		t.Fatalf("paid order after a refused close: %+v (%v)", o, err)
	}

	// Paid at WeChat Pay, notification held back: the close is refused by
	// WeChat Pay and the payment recorded from the query.
	w.payCreate(t, payOrderBody("NATIVE", "PAYCLOSE03", 100))
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, Kind: wxpaysim.KindNotifyOutOfOrder, Count: 1})
	if _, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: "PAYCLOSE03"}); err != nil {
		t.Fatal(err)
	}
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders/PAYCLOSE03/close", nil, nil); st != http.StatusConflict || e.Code != payments.CodeOrderPaid {
		t.Fatalf("close of an order paid at WeChat Pay: %d %+v, want 409 ORDER_PAID", st, e)
	}
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYCLOSE03"), &o); err != nil || o.Status != ledger.TradeSuccess || o.TransactionID == "" {
		t.Fatalf("order paid at WeChat Pay: %+v (%v), want SUCCESS from the query", o, err)
	}
}

// TestPaymentsLiveQueryAppliesPaymentOnce: with the notification held back,
// ?live=true records the payment; the late notification is then a no-op.
func TestPaymentsLiveQueryAppliesPaymentOnce(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payCreate(t, payOrderBody("JSAPI", "PAYLIVE01", 551))
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, Kind: wxpaysim.KindNotifyOutOfOrder, Count: 1})
	res, err := w.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Merchant.MchID, OutTradeNo: "PAYLIVE01",
		Promotions: []wxpaysim.Promotion{{Type: "NOCASH", Amount: 1, StockID: "931386", CouponID: "PLC1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v := w.payGetOrder(t, "PAYLIVE01", ""); v.Status != "NOTPAY" || v.Live != nil {
		t.Fatalf("stored order before the notification: %+v, want NOTPAY", v)
	}
	v := w.payGetOrder(t, "PAYLIVE01", "?live=true")
	if v.Live == nil || v.Live.TradeState != "SUCCESS" || !v.Live.Applied || v.Status != "SUCCESS" || v.TransactionID != res.TransactionID ||
		v.Amount.PayerTotal != 550 || v.SettlementTotal != 550 || v.NoCashTotal != 1 || len(v.PromotionDetail) != 1 {
		t.Fatalf("live query: %+v (live %+v), want SUCCESS applied with payer_total 550, settlement 550", v, v.Live)
	}
	var p ledger.TxnPointer
	if err := w.Store.Get(ctx, ledger.TxnKey(res.TransactionID), &p); err != nil || p.No != "PAYLIVE01" || p.Kind != ledger.KindOrder {
		t.Errorf("transaction pointer %+v (%v)", p, err)
	}
	if again := w.payGetOrder(t, "PAYLIVE01", "?live=true"); again.Live.Applied || len(again.Live.Differences) != 0 {
		t.Errorf("second live query: %+v, want nothing applied and no differences", again.Live)
	}
	// The next notification releases the held one: it is acknowledged and superseded.
	w.payPaid(t, "NATIVE", "PAYLIVE02", 100)
	if ds := w.waitDeliveries(t, res.NotificationID, 1); !ds[0].Acked {
		t.Fatalf("held notification: %+v", ds)
	}
	if got := notificationOutcomes(w, res.NotificationID); len(got) != 1 || got[0] != "superseded" {
		t.Errorf("late notification outcomes %v, want [superseded]", got)
	}
	// The payment was applied once, by the query: one application on the
	// row and one domain event (the stack has no EventBridge, so it waits
	// in the outbox), none from the superseded notification.
	var row map[string]any
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYLIVE01"), &row); err != nil || row[ledger.AppliedAttr(ledger.EventPaymentSuccess)] != float64(1) {
		t.Errorf("order row applied counter = %v (%v), want 1", row[ledger.AppliedAttr(ledger.EventPaymentSuccess)], err)
	}
	if ids := outboxIDs(ctx, t, w, ledger.EventPaymentSuccess, `"out_trade_no":"PAYLIVE01"`); len(ids) != 1 || ids[0] != "query:"+res.TransactionID {
		t.Errorf("domain events of PAYLIVE01's payment: %v, want exactly [query:%s]", ids, res.TransactionID)
	}
	if st, e := w.payCall(t, http.MethodGet, "/payments/orders/PAYLIVE01?live=maybe", nil, nil); st != http.StatusBadRequest {
		t.Errorf("live=maybe: %d %+v, want 400", st, e)
	}
	if st, _ := w.payCall(t, http.MethodGet, "/payments/orders/PAYNOSUCH9?live=true", nil, nil); st != http.StatusNotFound {
		t.Errorf("live query of an unknown order: %d, want 404", st)
	}
}

// outboxIDs lists the ids of the domain events of eventType waiting in the
// outbox (the test stacks have no EventBridge) whose detail contains match.
func outboxIDs(ctx context.Context, t *testing.T, w *world, eventType, match string) []string {
	t.Helper()
	var pending []domainevent.Event
	if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.OutboxIndex, Limit: 500}, &pending); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range pending {
		if ev.DetailType == eventType && strings.Contains(string(ev.Detail), match) {
			ids = append(ids, ev.ID)
		}
	}
	return ids
}

// notificationOutcomes lists the notify function's outcome for each
// delivery of notification id, from its log lines.
func notificationOutcomes(w *world, id string) []string {
	var out []string
	for _, line := range strings.Split(w.logs.String(), "\n") {
		var l struct {
			Msg     string `json:"msg"`
			ID      string `json:"id"`
			Outcome string `json:"outcome"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "notification" && l.ID == id {
			out = append(out, l.Outcome)
		}
	}
	return out
}

// paySnapshot is every item of the table, for "nothing was written" checks.
func (w *world) paySnapshot(t *testing.T) string {
	t.Helper()
	var items []map[string]any
	var start map[string]dbtypes.AttributeValue
	for {
		out, err := w.DB.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(w.Store.Table()), ExclusiveStartKey: start,
			ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		var page []map[string]any
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			t.Fatal(err)
		}
		items = append(items, page...)
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	sort.Slice(items, func(i, j int) bool {
		return fmt.Sprint(items[i]["pk"], items[i]["sk"]) < fmt.Sprint(items[j]["pk"], items[j]["sk"])
	})
	b, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// putPayScoreOrder writes a Pay Score order row as the notify function
// does on PAYSCORE.USER_PAID (state DONE) or one still running.
func (w *world) putPayScoreOrder(t *testing.T, outOrderNo, state, txn string, amount int64, promos []ledger.Promotion) {
	t.Helper()
	coll, err := json.Marshal(map[string]any{"state": "USER_PAID", "total_amount": amount, "paid_amount": amount,
		"details": []map[string]any{{"seq": 1, "amount": amount, "paid_type": "NEWTON", "paid_time": ledger.WechatTime(time.Now()),
			"transaction_id": txn, "promotion_detail": promos}}})
	if err != nil {
		t.Fatal(err)
	}
	row := map[string]any{"out_order_no": outOrderNo, "state": state, "total_amount": amount}
	if state == "DONE" {
		row["state_description"], row["transaction_id"], row["paid_amount"], row["collection_json"] = "USER_PAID", txn, amount, string(coll)
	}
	if err := w.Store.Put(context.Background(), &store.Put{Key: ledger.PayScoreOrderKey(outOrderNo), Value: row}); err != nil {
		t.Fatal(err)
	}
}

// TestPaymentsRefundRejectsBadInput: every refund the ledger can refuse is a
// 4xx with {code, message}, writes nothing and never reaches WeChat Pay.
func TestPaymentsRefundRejectsBadInput(t *testing.T) {
	w := newWorld(t, stackOptions())
	w.payPaid(t, "JSAPI", "PAYRFBAD01", 551, wxpaysim.Promotion{Type: "NOCASH", Amount: 1, CouponID: "RFB1"})
	if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFBAD01", "out_refund_no": "PAYRFBAD-R1", "refund": 100}); st != http.StatusOK {
		t.Fatalf("first refund: %d %+v", st, e)
	}
	w.payEvents(t, "REFUND.SUCCESS", 1)
	w.payCreate(t, payOrderBody("NATIVE", "PAYRFBAD02", 551))
	w.payCreate(t, payOrderBody("NATIVE", "PAYRFBAD03", 551))
	if st, e := w.payCall(t, http.MethodPost, "/payments/orders/PAYRFBAD03/close", nil, nil); st != http.StatusOK {
		t.Fatalf("close: %d %+v", st, e)
	}
	w.putPayScoreOrder(t, "PAYRFPS001", "DOING", "", 3000, nil)

	body := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return mustMarshal(t, m)
	}
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"zero refund", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 0), 400, apigw.CodeParamError},
		{"negative refund", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", -100), 400, apigw.CodeParamError},
		{"yuan instead of fen", `{"out_trade_no":"PAYRFBAD01","out_refund_no":"PAYRFBAD-X","refund":1.5}`, 400, apigw.CodeParamError},
		{"more than what is left", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 452), 400, payments.CodeRefundExceeds},
		{"more than the order", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 552), 400, payments.CodeRefundExceeds},
		{"unknown order", body("out_trade_no", "PAYNOSUCH1", "out_refund_no", "PAYRFBAD-X", "refund", 1), 404, apigw.CodeNotFound},
		{"unknown Pay Score order", body("out_order_no", "PAYNOSUCH2", "out_refund_no", "PAYRFBAD-X", "refund", 1), 404, apigw.CodeNotFound},
		{"unpaid order", body("out_trade_no", "PAYRFBAD02", "out_refund_no", "PAYRFBAD-X", "refund", 1), 409, payments.CodeOrderNotPaid},
		{"closed order", body("out_trade_no", "PAYRFBAD03", "out_refund_no", "PAYRFBAD-X", "refund", 1), 409, payments.CodeOrderClosed},
		{"Pay Score order not paid", body("out_order_no", "PAYRFPS001", "out_refund_no", "PAYRFBAD-X", "refund", 1), 409, payments.CodeOrderNotPaid},
		{"out_refund_no reused with another amount", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-R1", "refund", 101), 409, apigw.CodeConflict},
		{"out_refund_no reused for another order", body("out_trade_no", "PAYRFBAD02", "out_refund_no", "PAYRFBAD-R1", "refund", 100), 409, apigw.CodeConflict},
		{"no order named", body("out_refund_no", "PAYRFBAD-X", "refund", 1), 400, apigw.CodeParamError},
		{"two orders named", body("out_trade_no", "PAYRFBAD01", "transaction_id", "4200000000000000000000000000", "out_refund_no", "PAYRFBAD-X", "refund", 1), 400, apigw.CodeParamError},
		{"bad out_refund_no", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "退款 1", "refund", 1), 400, apigw.CodeParamError},
		{"no out_refund_no", body("out_trade_no", "PAYRFBAD01", "refund", 1), 400, apigw.CodeParamError},
		{"reason too long", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 1, "reason", strings.Repeat("退", 81)), 400, apigw.CodeParamError},
		{"funds_account", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 1, "funds_account", "BASIC"), 400, apigw.CodeParamError},
		{"unknown field", body("out_trade_no", "PAYRFBAD01", "out_refund_no", "PAYRFBAD-X", "refund", 1, "amount", 1), 400, apigw.CodeParamError},
		{"empty body", "", 400, apigw.CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, calls := w.paySnapshot(t), len(w.Sim.Requests())
			st, raw := w.payRaw(t, http.MethodPost, "/payments/refunds", tc.body)
			var e apigw.ErrorBody
			_ = json.Unmarshal(raw, &e)
			if st != tc.status || e.Code != tc.code || e.Message == "" {
				t.Fatalf("POST /payments/refunds %s: %d %s, want %d %s", tc.body, st, raw, tc.status, tc.code)
			}
			if n := len(w.Sim.Requests()); n != calls {
				t.Errorf("WeChat Pay was called %d times for a refused refund", n-calls)
			}
			if after := w.paySnapshot(t); after != before {
				t.Errorf("the table changed for a refused refund:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
	for _, path := range []string{"/payments/refunds/PAYNOSUCHREFUND", "/payments/refunds/退款"} {
		if st, _ := w.payCall(t, http.MethodGet, path, nil, nil); st != http.StatusNotFound && st != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 404 or 400", path, st)
		}
	}
	v := w.payGetOrder(t, "PAYRFBAD01", "")
	if v.Refunds == nil || v.Refunds.Requested != 100 || v.Refunds.Refundable != 451 || len(v.Refunds.Items) != 1 {
		t.Errorf("order refunds after the refused ones: %+v, want only the first refund of 100", v.Refunds)
	}
}

// TestPaymentsRefundByTransactionID: a payment the ledger learnt from its
// notification is refunded by transaction_id (one lookup at WeChat Pay,
// then the pointer), and an unknown transaction_id is a 404 writing nothing.
func TestPaymentsRefundByTransactionID(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	o := w.payPaid(t, "NATIVE", "PAYRFTXN01", 1000)
	var p ledger.TxnPointer
	if err := w.Store.Get(ctx, ledger.TxnKey(o.TransactionID), &p); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("pointer before any refund: %+v (%v), want none (the notification does not write it)", p, err)
	}
	r, st, e := w.payRefund(t, map[string]any{"transaction_id": o.TransactionID, "out_refund_no": "PAYRFTXN-R1", "refund": 400})
	if st != http.StatusOK || r.OutTradeNo != "PAYRFTXN01" || r.TransactionID != o.TransactionID || r.Amount.PayerRefund != 400 {
		t.Fatalf("refund by transaction_id: %d %+v %+v", st, r, e)
	}
	if n := w.paySimCalls("/v3/pay/transactions/id/"); n != 1 {
		t.Errorf("%d lookups by transaction_id, want 1", n)
	}
	if _, st, e := w.payRefund(t, map[string]any{"transaction_id": o.TransactionID, "out_refund_no": "PAYRFTXN-R2", "refund": 600}); st != http.StatusOK {
		t.Fatalf("second refund by transaction_id: %d %+v", st, e)
	}
	if n := w.paySimCalls("/v3/pay/transactions/id/"); n != 1 {
		t.Errorf("%d lookups by transaction_id after the pointer was written, want still 1", n)
	}
	// The two refunds' notifications arrive on their own time and write the
	// ledger: the table is compared once both were acknowledged.
	w.payEvents(t, "REFUND.SUCCESS", 2)
	before := w.paySnapshot(t)
	if _, st, e := w.payRefund(t, map[string]any{"transaction_id": "4200000000000000000000000001", "out_refund_no": "PAYRFTXN-R3", "refund": 1}); st != http.StatusNotFound {
		t.Errorf("unknown transaction_id: %d %+v, want 404", st, e)
	}
	if after := w.paySnapshot(t); after != before {
		t.Error("an unknown transaction_id wrote to the table")
	}
	if n := w.paySimCalls("/v3/refund/"); n != 2 {
		t.Errorf("%d refund calls, want 2", n)
	}
}

// TestPaymentsPayScoreRefund: a paid Pay Score order is refunded through its
// transaction_id with the coupon split of its collection.
func TestPaymentsPayScoreRefund(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	txn, err := w.Sim.RecordPaidTransaction(ctx, wxpaysim.PaidTransaction{MchID: w.Merchant.MchID, Total: 3000, Attach: "wxzff|x|PAYPS0001",
		Promotions: []wxpaysim.Promotion{{Type: "NOCASH", Amount: 300, CouponID: "PSC1", StockID: "PSS1"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.putPayScoreOrder(t, "PAYPS0001", "DONE", txn.TransactionID, 3000,
		[]ledger.Promotion{{CouponID: "PSC1", Type: "NOCASH", Amount: 300, StockID: "PSS1", MerchantContribute: 300}})
	r, st, e := w.payRefund(t, map[string]any{"out_order_no": "PAYPS0001", "out_refund_no": "PAYPS-R1", "refund": 1000})
	if st != http.StatusOK {
		t.Fatalf("Pay Score refund: %d %+v", st, e)
	}
	if r.OutOrderNo != "PAYPS0001" || r.Prediction.PayerRefund != 900 || r.Prediction.DiscountRefund != 100 || r.Prediction.SettlementRefund != 900 ||
		!r.Prediction.Checked || !r.Prediction.Matches || r.Amount.PayerRefund != 900 || r.Amount.SettlementTotal != 2700 {
		t.Fatalf("Pay Score refund %+v, want payer 900 / coupon 100 / settlement 900 predicted and matched", r)
	}
	var sent map[string]any
	reqs := w.Sim.Requests()
	_ = json.Unmarshal(reqs[len(reqs)-1].Body, &sent)
	amount, _ := sent["amount"].(map[string]any)
	if sent["transaction_id"] != txn.TransactionID || sent["out_trade_no"] != nil || amount["total"] != float64(3000) {
		t.Errorf("refund request %s, want it by transaction_id with total 3000", reqs[len(reqs)-1].Body)
	}
	w.payEvents(t, "REFUND.SUCCESS", 1)
	if g := w.payGetRefund(t, "PAYPS-R1", ""); g.Status != "SUCCESS" || g.SuccessTime == "" {
		t.Errorf("Pay Score refund after REFUND.SUCCESS: %+v", g)
	}
	if r2, st, e := w.payRefund(t, map[string]any{"transaction_id": txn.TransactionID, "out_refund_no": "PAYPS-R2", "refund": 2000}); st != http.StatusOK ||
		r2.OutOrderNo != "PAYPS0001" || r2.Amount.PayerRefund != 1800 || !r2.Prediction.Matches {
		t.Fatalf("Pay Score refund by transaction_id: %d %+v %+v", st, r2, e)
	}
	if n := w.paySimCalls("/v3/pay/transactions/id/"); n != 0 {
		t.Errorf("%d lookups at WeChat Pay; the pointer written by the first refund should answer", n)
	}
	if _, st, e := w.payRefund(t, map[string]any{"out_order_no": "PAYPS0001", "out_refund_no": "PAYPS-R3", "refund": 1}); st != http.StatusBadRequest ||
		e.Code != payments.CodeRefundExceeds {
		t.Errorf("refund past the Pay Score order: %d %+v, want 400 %s", st, e, payments.CodeRefundExceeds)
	}
}

// TestPaymentsRefundRejectedByWeChat: a refused refund is kept REJECTED (its
// number answers the same refusal), and its amount is free again.
func TestPaymentsRefundRejectedByWeChat(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payPaid(t, "NATIVE", "PAYRFREJ01", 1000)
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "/v3/refund/domestic/refunds", Kind: wxpaysim.KindError,
		Status: http.StatusBadRequest, Code: "NOT_ENOUGH", Count: 1})
	req := map[string]any{"out_trade_no": "PAYRFREJ01", "out_refund_no": "PAYRFREJ-R1", "refund": 1000}
	if _, st, e := w.payRefund(t, req); st != http.StatusBadRequest || e.Code != "NOT_ENOUGH" {
		t.Fatalf("refused refund: %d %+v, want 400 NOT_ENOUGH", st, e)
	}
	var row ledger.RefundRecord
	if err := w.Store.Get(ctx, ledger.RefundKey("PAYRFREJ-R1"), &row); err != nil || row.Status != ledger.RefundRejected || row.RejectCode != "NOT_ENOUGH" {
		t.Fatalf("refused refund row %+v (%v), want REJECTED NOT_ENOUGH", row, err)
	}
	calls := w.paySimCalls("/v3/refund/")
	if _, st, e := w.payRefund(t, req); st != http.StatusBadRequest || e.Code != "NOT_ENOUGH" || w.paySimCalls("/v3/refund/") != calls {
		t.Fatalf("replay of the refused refund: %d %+v, want 400 NOT_ENOUGH again without a WeChat call", st, e)
	}
	var o ledger.PaymentOrder
	if err := w.Store.Get(ctx, ledger.OrderKey("PAYRFREJ01"), &o); err != nil || o.Status != ledger.TradeSuccess || o.RefundReserved != 0 {
		t.Fatalf("order after the refusal: %+v (%v), want SUCCESS with nothing reserved", o, err)
	}
	if r, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFREJ01", "out_refund_no": "PAYRFREJ-R2", "refund": 1000}); st != http.StatusOK || r.RefundID == "" || r.Amount.PayerRefund != 1000 {
		t.Fatalf("full refund after the refusal: %d %+v %+v", st, r, e)
	}
}

// TestPaymentsRefundUnknownOutcomeResumes: when WeChat Pay's answer never
// comes, the refund stays PROCESSING and unsubmitted; its number is already
// bound to its amount, and the same request resubmits it.
func TestPaymentsRefundUnknownOutcomeResumes(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payPaid(t, "NATIVE", "PAYRFUNK01", 1000)
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "/v3/refund/domestic/refunds", Kind: wxpaysim.KindError, Count: 3})
	req := map[string]any{"out_trade_no": "PAYRFUNK01", "out_refund_no": "PAYRFUNK-R1", "refund": 300}
	if _, st, e := w.payRefund(t, req); st != http.StatusServiceUnavailable || e.Code != payments.CodeTryAgain {
		t.Fatalf("refund while WeChat Pay fails: %d %+v, want 503 TRY_AGAIN", st, e)
	}
	var row ledger.RefundRecord
	if err := w.Store.Get(ctx, ledger.RefundKey("PAYRFUNK-R1"), &row); err != nil || row.Status != ledger.RefundProcessing || row.Submitted {
		t.Fatalf("refund row %+v (%v), want PROCESSING, not submitted", row, err)
	}
	if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFUNK01", "out_refund_no": "PAYRFUNK-R1", "refund": 301}); st != http.StatusConflict {
		t.Fatalf("same number, other amount, while unsubmitted: %d %+v, want 409", st, e)
	}
	r, st, e := w.payRefund(t, req)
	if st != http.StatusOK || r.RefundID == "" || r.Amount.PayerRefund != 300 {
		t.Fatalf("replay: %d %+v %+v, want the refund submitted", st, r, e)
	}
	ok := 0
	for _, q := range w.Sim.Requests() {
		if q.Path == "/v3/refund/domestic/refunds" && q.Status == http.StatusOK {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d refunds accepted by WeChat Pay, want 1", ok)
	}
}

// TestPaymentsRefundClosedFreesAmount: REFUND.CLOSED gives the amount back,
// the order can be refunded again, and the order's refund state follows.
func TestPaymentsRefundClosedFreesAmount(t *testing.T) {
	w := newWorld(t, stackOptions())
	w.payPaid(t, "NATIVE", "PAYRFCLS01", 1000)
	if err := w.Sim.SetRefundOutcome(w.Merchant.MchID, "PAYRFCLS01", "CLOSED"); err != nil {
		t.Fatal(err)
	}
	if r, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFCLS01", "out_refund_no": "PAYRFCLS-R1", "refund": 1000}); st != http.StatusOK || (r.Status != "PROCESSING" && r.Status != "CLOSED") {
		t.Fatalf("refund: %d %+v %+v, want PROCESSING (or CLOSED if the notification was faster)", st, r, e)
	}
	w.payEvents(t, "REFUND.CLOSED", 1)
	if g := w.payGetRefund(t, "PAYRFCLS-R1", ""); g.Status != "CLOSED" {
		t.Fatalf("refund after REFUND.CLOSED: %+v", g)
	}
	if v := w.payGetOrder(t, "PAYRFCLS01", ""); v.Refunds.State != "NONE" || v.Refunds.Refundable != 1000 || v.Status != "REFUND" {
		t.Fatalf("order after a closed refund: status %s refunds %+v, want REFUND with 1000 refundable", v.Status, v.Refunds)
	}
	if err := w.Sim.SetRefundOutcome(w.Merchant.MchID, "PAYRFCLS01", "SUCCESS"); err != nil {
		t.Fatal(err)
	}
	if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFCLS01", "out_refund_no": "PAYRFCLS-R2", "refund": 1000}); st != http.StatusOK {
		t.Fatalf("refund after the closed one: %d %+v", st, e)
	}
	w.payEvents(t, "REFUND.SUCCESS", 1)
	if v := w.payGetOrder(t, "PAYRFCLS01", ""); v.Refunds.State != "FULL" || v.Refunds.Succeeded != 1000 || v.Refunds.Refundable != 0 || len(v.Refunds.Items) != 2 {
		t.Fatalf("order after the full refund: %+v, want FULL", v.Refunds)
	}
}

// TestPaymentsRefundLiveQuery: a held refund is PROCESSING; once WeChat Pay
// settles it with the notification held back, ?live=true applies SUCCESS and
// the late REFUND.SUCCESS is superseded.
func TestPaymentsRefundLiveQuery(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payPaid(t, "NATIVE", "PAYRFLIVE1", 1000)
	if err := w.Sim.SetRefundOutcome(w.Merchant.MchID, "PAYRFLIVE1", "PROCESSING"); err != nil {
		t.Fatal(err)
	}
	if _, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFLIVE1", "out_refund_no": "PAYRFLIVE-R1", "refund": 500}); st != http.StatusOK {
		t.Fatalf("refund: %d %+v", st, e)
	}
	if g := w.payGetRefund(t, "PAYRFLIVE-R1", "?live=true"); g.Status != "PROCESSING" || g.Live == nil || g.Live.Status != "PROCESSING" {
		t.Fatalf("held refund, live: %+v", g)
	}
	w.Sim.SetFault(wxpaysim.Fault{MchID: w.Merchant.MchID, PathPrefix: "REFUND.", Kind: wxpaysim.KindNotifyOutOfOrder, Count: 1})
	id, err := w.Sim.ResolveRefund(ctx, w.Merchant.MchID, "PAYRFLIVE-R1", "SUCCESS")
	if err != nil {
		t.Fatal(err)
	}
	if g := w.payGetRefund(t, "PAYRFLIVE-R1", ""); g.Status != "PROCESSING" {
		t.Fatalf("stored refund before the notification: %s, want PROCESSING", g.Status)
	}
	g := w.payGetRefund(t, "PAYRFLIVE-R1", "?live=true")
	if g.Status != "SUCCESS" || g.SuccessTime == "" || g.Live == nil || !g.Live.Applied || !g.Prediction.Matches {
		t.Fatalf("live query after WeChat Pay settled: %+v (live %+v)", g, g.Live)
	}
	w.payPaid(t, "NATIVE", "PAYRFLIVE2", 100) // releases the held notification
	if ds := w.waitDeliveries(t, id, 1); !ds[0].Acked {
		t.Fatalf("held REFUND.SUCCESS: %+v", ds)
	}
	if got := notificationOutcomes(w, id); len(got) != 1 || got[0] != "superseded" {
		t.Errorf("late REFUND.SUCCESS outcomes %v, want [superseded]", got)
	}
	// Applied once, by the query: its counter and its one domain event.
	var row map[string]any
	if err := w.Store.Get(ctx, ledger.RefundKey("PAYRFLIVE-R1"), &row); err != nil || row[ledger.AppliedAttr("REFUND.SUCCESS")] != float64(1) {
		t.Errorf("refund row applied counter = %v (%v), want 1", row[ledger.AppliedAttr("REFUND.SUCCESS")], err)
	}
	if ids := outboxIDs(ctx, t, w, "REFUND.SUCCESS", "PAYRFLIVE-R1"); len(ids) != 1 || !strings.HasPrefix(ids[0], "query:") {
		t.Errorf("domain events of the refund: %v, want exactly one from the query", ids)
	}
	if st, _ := w.payCall(t, http.MethodGet, "/payments/refunds/PAYRFLIVE-R1?live=yes", nil, nil); st != http.StatusBadRequest {
		t.Errorf("live=yes: %d, want 400", st)
	}
}

// TestPaymentsRefundDifferenceRecorded: when WeChat Pay's split disagrees
// with the stored prediction (here the prediction is altered to stand in
// for a WeChat rounding the calculator does not know), the difference is
// shown and recorded once for reconciliation, whether it is seen in a live
// query or in the figures REFUND.SUCCESS brought.
func TestPaymentsRefundDifferenceRecorded(t *testing.T) {
	w := newWorld(t, stackOptions())
	ctx := context.Background()
	w.payPaid(t, "NATIVE", "PAYRFDIFF1", 551, wxpaysim.Promotion{Type: "NOCASH", Amount: 1, CouponID: "DIFFC1"})
	if err := w.Sim.SetRefundOutcome(w.Merchant.MchID, "PAYRFDIFF1", "PROCESSING"); err != nil {
		t.Fatal(err)
	}
	alter := func(no string) {
		t.Helper()
		if err := w.Store.Update(ctx, &store.Update{Key: ledger.RefundKey(no), MustExist: true, Set: map[string]any{
			"predicted_payer_refund": 99, "predicted_discount_refund": 1, "predicted_settlement_refund": 99,
			"predicted_promotions": []ledger.PromotionRefund{{PromotionID: "DIFFC1", Type: "NOCASH", Amount: 1, RefundAmount: 1}}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		no, source string
		settle     func()
	}{
		{"PAYRFDIFF-R1", "query", func() {}},
		{"PAYRFDIFF-R2", "stored", func() {
			if _, err := w.Sim.ResolveRefund(ctx, w.Merchant.MchID, "PAYRFDIFF-R2", "SUCCESS"); err != nil {
				t.Fatal(err)
			}
			w.payEvents(t, "REFUND.SUCCESS", 1)
		}},
	} {
		r, st, e := w.payRefund(t, map[string]any{"out_trade_no": "PAYRFDIFF1", "out_refund_no": tc.no, "refund": 100})
		if st != http.StatusOK || !r.Prediction.Matches {
			t.Fatalf("refund %s: %d %+v %+v, want it accepted and matching", tc.no, st, r, e)
		}
		alter(tc.no)
		tc.settle()
		query := ""
		if tc.source == "query" {
			query = "?live=true"
		}
		g := w.payGetRefund(t, tc.no, query)
		if !g.Prediction.Checked || g.Prediction.Matches || len(g.Prediction.Differences) == 0 {
			t.Fatalf("refund %s after the prediction was altered: %+v, want a difference", tc.no, g.Prediction)
		}
		var rec struct {
			OutRefundNo string   `dynamodbav:"out_refund_no"`
			Differences []string `dynamodbav:"differences"`
			Source      string   `dynamodbav:"source"`
		}
		if err := w.Store.Get(ctx, ledger.RefundDiffKey(tc.no), &rec); err != nil || rec.Source != tc.source || len(rec.Differences) == 0 {
			t.Fatalf("difference record of %s: %+v (%v), want one from the %s", tc.no, rec, err, tc.source)
		}
	}
	var open []map[string]any
	if _, err := w.Store.Query(ctx, store.Query{Index: true, PK: ledger.RefundDiffIndex}, &open); err != nil || len(open) != 2 {
		t.Fatalf("open refund differences: %v (%v), want 2", open, err)
	}
}
