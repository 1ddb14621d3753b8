package wxpaysim_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

// transaction is the subset of the transaction JSON the tests check.
type transaction struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id"`
	TradeType      string `json:"trade_type"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type"`
	SuccessTime    string `json:"success_time"`
	Payer          *struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
	Amount struct {
		Total         int64  `json:"total"`
		PayerTotal    *int64 `json:"payer_total"`
		Currency      string `json:"currency"`
		PayerCurrency string `json:"payer_currency"`
	} `json:"amount"`
	PromotionDetail []struct {
		CouponID            string `json:"coupon_id"`
		Name                string `json:"name"`
		Scope               string `json:"scope"`
		Type                string `json:"type"`
		Amount              int64  `json:"amount"`
		StockID             string `json:"stock_id"`
		WechatpayContribute int64  `json:"wechatpay_contribute"`
		MerchantContribute  int64  `json:"merchant_contribute"`
		OtherContribute     int64  `json:"other_contribute"`
		Currency            string `json:"currency"`
	} `json:"promotion_detail"`
}

func decodeTxn(t *testing.T, b []byte) transaction {
	t.Helper()
	var tx transaction
	if err := json.Unmarshal(b, &tx); err != nil {
		t.Fatalf("decode transaction %s: %v", b, err)
	}
	return tx
}

func TestPaymentFlow(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	const no = "ORDER20250601001"
	body := prepayBody(f.m, no, 1000, rc.URL())
	body["payer"] = map[string]any{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
	body["attach"] = "cart=42"
	raw := mustJSON(t, body)

	// Idempotent prepay.
	r1 := f.call(t, "POST", "/v3/pay/transactions/jsapi", raw, nil)
	r2 := f.call(t, "POST", "/v3/pay/transactions/jsapi", raw, nil)
	var p1, p2 struct {
		PrepayID string `json:"prepay_id"`
	}
	_ = json.Unmarshal(r1.Body, &p1)
	_ = json.Unmarshal(r2.Body, &p2)
	if r1.Status != 200 || !strings.HasPrefix(p1.PrepayID, "wx") || len(p1.PrepayID) != 36 {
		t.Fatalf("jsapi prepay: got %d %s, want 200 with a 36-char wx... prepay_id", r1.Status, r1.Body)
	}
	if r2.Status != 200 || p2.PrepayID != p1.PrepayID {
		t.Errorf("same prepay again: got %d %s, want 200 with prepay_id %s", r2.Status, r2.Body, p1.PrepayID)
	}
	body["amount"] = map[string]any{"total": 999, "currency": "CNY"}
	if r := f.call(t, "POST", "/v3/pay/transactions/jsapi", mustJSON(t, body), nil); r.Status != 400 || r.code() != "INVALID_REQUEST" {
		t.Errorf("same out_trade_no, different amount: got %d %s, want 400 INVALID_REQUEST", r.Status, r.Body)
	}

	// NOTPAY.
	q := f.call(t, "GET", "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+f.m.MchID, nil, nil)
	if tx := decodeTxn(t, q.Body); q.Status != 200 || tx.TradeState != "NOTPAY" || tx.TransactionID != "" || tx.Amount.Total != 1000 {
		t.Errorf("query before payment: got %d %s, want 200 NOTPAY total 1000 without transaction_id", q.Status, q.Body)
	}

	// The user pays with a NOCASH coupon.
	var paid wxpaysim.PaymentResult
	status := f.admin(t, "POST", "/sim/users/pay", map[string]any{
		"mchid": f.m.MchID, "out_trade_no": no,
		"promotions": []map[string]any{{"coupon_id": "109519", "type": "NOCASH", "amount": 300, "stock_id": "8000123",
			"merchant_contribute": 300}},
	}, &paid)
	if status != 200 || paid.NotificationID == "" || paid.TransactionID == "" {
		t.Fatalf("POST /sim/users/pay: got %d %+v, want 200 with transaction and notification ids", status, paid)
	}

	q = f.call(t, "GET", "/v3/pay/transactions/out-trade-no/"+no+"?mchid="+f.m.MchID, nil, nil)
	tx := decodeTxn(t, q.Body)
	checkPaid := func(where string, tx transaction) {
		t.Helper()
		switch {
		case tx.TradeState != "SUCCESS", tx.TransactionID != paid.TransactionID, len(tx.TransactionID) != 28,
			tx.TradeType != "JSAPI", tx.BankType != "OTHERS", tx.AppID != f.m.AppID, tx.MchID != f.m.MchID, tx.OutTradeNo != no:
			t.Errorf("%s: got %+v, want SUCCESS JSAPI OTHERS %s", where, tx, paid.TransactionID)
		case tx.Amount.Total != 1000 || tx.Amount.PayerTotal == nil || *tx.Amount.PayerTotal != 700 || tx.Amount.Currency != "CNY" || tx.Amount.PayerCurrency != "CNY":
			t.Errorf("%s: amount got %+v, want total 1000 payer_total 700 CNY/CNY", where, tx.Amount)
		case tx.Payer == nil || tx.Payer.OpenID != "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o":
			t.Errorf("%s: payer got %+v, want the JSAPI payer", where, tx.Payer)
		case len(tx.PromotionDetail) != 1:
			t.Errorf("%s: promotion_detail got %+v, want one", where, tx.PromotionDetail)
		default:
			p := tx.PromotionDetail[0]
			if p.CouponID != "109519" || p.Type != "NOCASH" || p.Scope != "GLOBAL" || p.Amount != 300 || p.StockID != "8000123" ||
				p.MerchantContribute != 300 || p.WechatpayContribute != 0 || p.OtherContribute != 0 || p.Currency != "CNY" || p.Name == "" {
				t.Errorf("%s: promotion got %+v, want NOCASH GLOBAL 300 merchant-funded", where, p)
			}
		}
		if st, err := time.Parse(time.RFC3339, tx.SuccessTime); err != nil || !strings.HasSuffix(tx.SuccessTime, "+08:00") ||
			st.Sub(f.sim.Now()).Abs() > time.Minute {
			t.Errorf("%s: success_time got %q, want RFC 3339 +08:00 near the sim clock", where, tx.SuccessTime)
		}
	}
	if q.Status != 200 {
		t.Fatalf("query after payment: got %d %s, want 200", q.Status, q.Body)
	}
	checkPaid("query by out_trade_no", tx)
	q = f.call(t, "GET", "/v3/pay/transactions/id/"+paid.TransactionID+"?mchid="+f.m.MchID, nil, nil)
	checkPaid("query by transaction_id", decodeTxn(t, q.Body))

	// The notification.
	if err := wait(t, f.sim, paid.NotificationID); err != nil {
		t.Fatalf("WaitDelivered: got %v, want nil", err)
	}
	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver: got %d notifications, want 1", len(got))
	}
	d := got[0]
	if d.VerifyErr != nil {
		t.Fatalf("notification verify/decrypt: got %v, want nil", d.VerifyErr)
	}
	var env struct {
		ID           string `json:"id"`
		CreateTime   string `json:"create_time"`
		ResourceType string `json:"resource_type"`
		EventType    string `json:"event_type"`
		Summary      string `json:"summary"`
		Resource     struct {
			OriginalType   string `json:"original_type"`
			Algorithm      string `json:"algorithm"`
			AssociatedData string `json:"associated_data"`
			Nonce          string `json:"nonce"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(d.Body, &env); err != nil {
		t.Fatalf("notification body %s: %v", d.Body, err)
	}
	if env.ID != paid.NotificationID || !strings.HasPrefix(env.ID, "EV-") || len(env.ID) != 22 || env.EventType != "TRANSACTION.SUCCESS" ||
		env.ResourceType != "encrypt-resource" || env.Summary != "支付成功" || env.Resource.OriginalType != "transaction" ||
		env.Resource.Algorithm != "AEAD_AES_256_GCM" || env.Resource.AssociatedData != "transaction" || len(env.Resource.Nonce) != 12 ||
		!strings.HasSuffix(env.CreateTime, "+08:00") {
		t.Errorf("notification envelope: got %s, want TRANSACTION.SUCCESS/transaction/encrypt-resource EV-<19 digits>", d.Body)
	}
	for h, want := range map[string]string{"Content-Type": "application/json", "Wechatpay-Serial": f.p.PublicKeyID,
		"Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"} {
		if got := d.Header.Get(h); got != want {
			t.Errorf("notification header %s: got %q, want %q", h, got, want)
		}
	}
	checkPaid("notification plaintext", decodeTxn(t, d.Plain))

	// Paying twice, closing a paid order, closing an unpaid one.
	if status := f.admin(t, "POST", "/sim/users/pay", map[string]any{"mchid": f.m.MchID, "out_trade_no": no}, nil); status != http.StatusConflict {
		t.Errorf("pay a paid order: got %d, want 409", status)
	}
	closeBody := mustJSON(t, map[string]string{"mchid": f.m.MchID})
	if r := f.call(t, "POST", "/v3/pay/transactions/out-trade-no/"+no+"/close", closeBody, nil); r.Status != 400 || r.code() != "ORDERPAID" {
		t.Errorf("close a paid order: got %d %s, want 400 ORDERPAID", r.Status, r.Body)
	}
	if r := f.call(t, "POST", "/v3/pay/transactions/jsapi", raw, nil); r.Status != 400 || r.code() != "ORDERPAID" {
		t.Errorf("prepay a paid order again: got %d %s, want 400 ORDERPAID", r.Status, r.Body)
	}
	native := mustJSON(t, prepayBody(f.m, "ORDER20250601002", 50, ""))
	if r := f.call(t, "POST", "/v3/pay/transactions/native", native, nil); r.Status != 400 || r.code() != "PARAM_ERROR" {
		t.Errorf("prepay without notify_url and no merchant default: got %d %s, want 400 PARAM_ERROR", r.Status, r.Body)
	}
	native = mustJSON(t, prepayBody(f.m, "ORDER20250601002", 50, rc.URL()))
	if r := f.call(t, "POST", "/v3/pay/transactions/native", native, nil); r.Status != 200 {
		t.Fatalf("native prepay: got %d %s, want 200", r.Status, r.Body)
	}
	r := f.call(t, "POST", "/v3/pay/transactions/out-trade-no/ORDER20250601002/close", closeBody, nil)
	if r.Status != 204 || len(r.Body) != 0 {
		t.Errorf("close an unpaid order: got %d %q, want 204 and no body", r.Status, r.Body)
	}
	if err := f.verify(r); err != nil {
		t.Errorf("204 signature: got %v, want it to verify", err)
	}
	q = f.call(t, "GET", "/v3/pay/transactions/out-trade-no/ORDER20250601002?mchid="+f.m.MchID, nil, nil)
	if tx := decodeTxn(t, q.Body); tx.TradeState != "CLOSED" {
		t.Errorf("query a closed order: got %s, want CLOSED", q.Body)
	}
	if status := f.admin(t, "POST", "/sim/users/pay", map[string]any{"mchid": f.m.MchID, "out_trade_no": "ORDER20250601002"}, nil); status != http.StatusConflict {
		t.Errorf("pay a closed order: got %d, want 409", status)
	}
}

func TestPrepayValidation(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "https://merchant.example.com/notify")
	tests := []struct {
		name     string
		api      string
		edit     func(b map[string]any)
		wantCode string // "" = 200
	}{
		{"valid native", "native", func(map[string]any) {}, ""},
		{"merchant default notify_url", "native", func(b map[string]any) { delete(b, "notify_url") }, ""},
		{"http loopback notify_url", "app", func(b map[string]any) { b["notify_url"] = "http://127.0.0.1:9000/n" }, ""},
		{"h5 with scene_info", "h5", func(b map[string]any) {
			b["scene_info"] = map[string]any{"payer_client_ip": "14.23.150.211", "h5_info": map[string]any{"type": "Wap"}}
		}, ""},
		{"h5 without scene_info", "h5", func(map[string]any) {}, "PARAM_ERROR"},
		{"jsapi without payer", "jsapi", func(map[string]any) {}, "PARAM_ERROR"},
		{"mchid of another merchant", "native", func(b map[string]any) { b["mchid"] = "1900000999" }, "PARAM_ERROR"},
		{"unregistered appid", "native", func(b map[string]any) { b["appid"] = "wx0000000000000000" }, "APPID_MCHID_NOT_MATCH"},
		{"total 0", "native", func(b map[string]any) { b["amount"] = map[string]any{"total": 0} }, "PARAM_ERROR"},
		{"no amount", "native", func(b map[string]any) { delete(b, "amount") }, "PARAM_ERROR"},
		{"out_trade_no too short", "native", func(b map[string]any) { b["out_trade_no"] = "A1234" }, "PARAM_ERROR"},
		{"out_trade_no too long", "native", func(b map[string]any) { b["out_trade_no"] = strings.Repeat("A", 33) }, "PARAM_ERROR"},
		{"out_trade_no bad char", "native", func(b map[string]any) { b["out_trade_no"] = "ORDER#0001" }, "PARAM_ERROR"},
		{"out_trade_no allowed chars", "native", func(b map[string]any) { b["out_trade_no"] = "Ab_-|*0123" }, ""},
		{"description 128 chars", "native", func(b map[string]any) { b["description"] = strings.Repeat("商", 128) }, "PARAM_ERROR"},
		{"description 127 chars", "native", func(b map[string]any) { b["description"] = strings.Repeat("商", 127) }, ""},
		{"http notify_url", "native", func(b map[string]any) { b["notify_url"] = "http://merchant.example.com/n" }, "PARAM_ERROR"},
		{"notify_url with query", "native", func(b map[string]any) { b["notify_url"] = "https://merchant.example.com/n?a=1" }, "PARAM_ERROR"},
		{"bad time_expire", "native", func(b map[string]any) { b["time_expire"] = "2025-06-01 12:00:00" }, "PARAM_ERROR"},
		{"good time_expire", "native", func(b map[string]any) { b["time_expire"] = "2099-06-01T12:00:00+08:00" }, ""},
		{"USD", "native", func(b map[string]any) { b["amount"] = map[string]any{"total": 1, "currency": "USD"} }, "PARAM_ERROR"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := prepayBody(f.m, "VAL"+strings.Repeat("0", 6)+string(rune('A'+i)), 1, "https://merchant.example.com/notify")
			tc.edit(b)
			r := f.call(t, "POST", "/v3/pay/transactions/"+tc.api, mustJSON(t, b), nil)
			wantStatus := 200
			if tc.wantCode != "" {
				wantStatus = 400
			}
			if r.Status != wantStatus || r.code() != tc.wantCode {
				t.Errorf("POST %s %s: got %d %s, want %d %q", tc.api, mustJSON(t, b), r.Status, r.Body, wantStatus, tc.wantCode)
			}
		})
	}
	t.Run("query needs its mchid", func(t *testing.T) {
		for uri, want := range map[string]string{
			"/v3/pay/transactions/out-trade-no/VAL000000A":                            "PARAM_ERROR",
			"/v3/pay/transactions/out-trade-no/VAL000000A?mchid=1900000999":           "PARAM_ERROR",
			"/v3/pay/transactions/out-trade-no/NOSUCH0001?mchid=" + f.m.MchID:         "ORDER_NOT_EXIST",
			"/v3/pay/transactions/id/4200000000000000000000000000?mchid=" + f.m.MchID: "ORDER_NOT_EXIST",
		} {
			if r := f.call(t, "GET", uri, nil, nil); r.code() != want {
				t.Errorf("GET %s: got %d %s, want %s", uri, r.Status, r.Body, want)
			}
		}
	})
}

func TestPayOrderErrors(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)
	for _, no := range []string{"PAYERR0001", "PAYERR0002"} {
		if r := f.call(t, "POST", "/v3/pay/transactions/native", mustJSON(t, prepayBody(f.m, no, 100, rc.URL())), nil); r.Status != 200 {
			t.Fatalf("prepay %s: got %d %s", no, r.Status, r.Body)
		}
	}
	tests := []struct {
		name string
		p    wxpaysim.Payment
		want error
	}{
		{"unknown merchant", wxpaysim.Payment{MchID: "1999999999", OutTradeNo: "PAYERR0001"}, wxpaysim.ErrUnknownMerchant},
		{"unknown order", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "NOSUCH0001"}, wxpaysim.ErrOrderNotFound},
		{"bad coupon type", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "PAYERR0001",
			Promotions: []wxpaysim.Promotion{{Type: "FREE", Amount: 1}}}, wxpaysim.ErrInvalid},
		{"contributions do not add up", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "PAYERR0001",
			Promotions: []wxpaysim.Promotion{{Type: "CASH", Amount: 10, WechatpayContribute: 3}}}, wxpaysim.ErrInvalid},
		{"coupons over the total", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "PAYERR0001",
			Promotions: []wxpaysim.Promotion{{Type: "CASH", Amount: 101}}}, wxpaysim.ErrInvalid},
		{"ok with a CASH coupon", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "PAYERR0002",
			Promotions: []wxpaysim.Promotion{{Type: "CASH", Amount: 10, WechatpayContribute: 4, OtherContribute: 6}}}, nil},
		{"paid already", wxpaysim.Payment{MchID: f.m.MchID, OutTradeNo: "PAYERR0002"}, wxpaysim.ErrOrderState},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.sim.PayOrder(t.Context(), tc.p)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("PayOrder(%+v): got %v, want %v", tc.p, err, tc.want)
			}
		})
	}
}
