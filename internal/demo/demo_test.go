package demo_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/demo"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// startStack starts the in-process stack `make demo` starts when no `make
// dev` runs; handler logs (and EMF lines) go to logs.
func startStack(t *testing.T, logs *lambdatest.SyncBuffer) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Options{DynamoDBEndpoint: os.Getenv(ddblocal.EnvEndpoint),
		Table: fmt.Sprintf("demo_%d", time.Now().UnixNano()), TimeScale: 0.001, Log: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func config(t *testing.T, s *stack.Stack, out *bytes.Buffer) demo.Config {
	t.Helper()
	token, err := s.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return demo.Config{FrontURL: s.FrontURL, SimURL: s.SimURL, Token: token, Out: out, WaitTimeout: 20 * time.Second}
}

// TestDemoRunsEveryFlow runs the demo as `make demo` does, against the
// in-process stack: every flow completes, every step printed its calls and
// the state it changed, the ledger holds what the demo said, and nothing
// the stack or the demo logged carries key material or decrypted
// notification plaintext.
func TestDemoRunsEveryFlow(t *testing.T) {
	logs := &lambdatest.SyncBuffer{}
	s := startStack(t, logs)
	var out bytes.Buffer
	res, err := demo.Run(context.Background(), config(t, s, &out))
	t.Logf("demo output:\n%s", out.String())
	if err != nil {
		t.Errorf("demo.Run: %v", err)
	}
	if res == nil || !slices.Contains(res.Flows, "nocash") {
		t.Fatalf("the flows before the reconciliation did not all complete: %+v", res)
	}
	if !res.Passed() || !slices.Equal(res.Flows, demo.FlowNames()) {
		t.Errorf("flows completed %q, want %q (passed %v)", res.Flows, demo.FlowNames(), res.Passed())
	}

	t.Run("every step printed its calls and state", func(t *testing.T) {
		printed := out.String()
		for _, st := range res.Steps {
			if st.Err != nil {
				t.Errorf("step %d %q: %v", st.N, st.Title, st.Err)
			}
			if len(st.Calls) == 0 || len(st.Changes) == 0 {
				t.Errorf("step %d %q: %d calls, %d state lines; want at least one of each", st.N, st.Title, len(st.Calls), len(st.Changes))
			}
			if head := fmt.Sprintf("[%2d] %s\n", st.N, st.Title); !strings.Contains(printed, head) {
				t.Errorf("output lacks the step header %q", head)
			}
			for _, c := range st.Calls {
				line := fmt.Sprintf("%s  %-6s %s  -> %d (", c.Target, c.Method, c.Path, c.Status)
				if len(c.Path) <= 90 && !strings.Contains(printed, line) {
					t.Errorf("step %d: output lacks the call line %q", st.N, line)
				}
			}
			for _, ch := range st.Changes {
				if !strings.Contains(printed, ch) {
					t.Errorf("step %d: output lacks the state line %q", st.N, ch)
				}
			}
		}
	})

	t.Run("ledger", func(t *testing.T) { checkLedger(t, s, res) })

	t.Run("reconciliation", func(t *testing.T) {
		rec := res.Reconciliation
		if rec == nil || rec.Status != "DONE" || rec.Differences != 0 || rec.BillDate != res.BillDate || rec.Summary == nil || rec.Summary.Matched == 0 {
			t.Fatalf("reconciliation = %+v, want DONE for %s with matched rows and no differences", rec, res.BillDate)
		}
		if got := rec.Summary.Bill; got.Refunds != 1 || got.RefundTotal != 300 || got.ChargeNoCash != 1 {
			t.Errorf("bill side = %+v, want the demo's one refund of 300 and its NOCASH coupon of 1", got)
		}
		var row billing.Record
		if err := s.Store.Get(context.Background(), billing.RunKey(res.BillDate), &row); err != nil {
			t.Fatalf("reconciliation record of %s: %v", res.BillDate, err)
		}
		if row.Status != billing.StatusDone || row.Differences != 0 || row.ResultRunID != rec.RunID || len(row.Reports) == 0 {
			t.Errorf("ledger record %s = %s, %d differences, result run %s, reports %v; want DONE, 0, run %s, report keys",
				billing.RunKey(res.BillDate), row.Status, row.Differences, row.ResultRunID, row.Reports, rec.RunID)
		}
	})

	t.Run("no secret or plaintext in any log", func(t *testing.T) {
		secrets := stackSecrets(t, s, res)
		for _, src := range []struct{ name, text string }{{"handler logs", logs.String()}, {"demo output", out.String()}} {
			if src.text == "" {
				t.Errorf("%s are empty: the scan would prove nothing", src.name)
			}
			for _, leak := range scan(src.text, secrets) {
				t.Errorf("%s: %s", src.name, leak)
			}
		}
	})
}

// checkLedger reads the rows the demo's flows changed straight from
// DynamoDB.
func checkLedger(t *testing.T, s *stack.Stack, res *demo.Result) {
	ctx := context.Background()
	ids := res.IDs
	var (
		auth     ledger.PayScoreAuthorization
		psOrder  ledger.PayScoreOrder
		coupon   ledger.Coupon
		gift     ledger.Coupon
		giftPaid ledger.PaymentOrder
		noCash   ledger.PaymentOrder
		refund   ledger.RefundRecord
	)
	rows := []struct {
		name  string
		key   store.Key
		into  any
		check func() string
	}{
		{"Pay Score authorization", ledger.AuthorizationKey(s.Merchant.ServiceID, ids.PayScoreOpenID), &auth, func() string {
			if auth.State != "AVAILABLE" || auth.AuthorizationCode != ids.PayScoreCode {
				return fmt.Sprintf("state %q code %q, want AVAILABLE with code %s", auth.State, auth.AuthorizationCode, ids.PayScoreCode)
			}
			return ""
		}},
		{"Pay Score order", ledger.PayScoreOrderKey(ids.PayScoreOrder), &psOrder, func() string {
			if psOrder.State != "DONE" || psOrder.TransactionID == "" || psOrder.TransactionID != ids.PayScoreTransaction || psOrder.PaidAmount != 300 {
				return fmt.Sprintf("%s transaction %q paid %d, want DONE, %s, 300", psOrder.Describe(), psOrder.TransactionID, psOrder.PaidAmount, ids.PayScoreTransaction)
			}
			return ""
		}},
		{"redeemed coupon", ledger.CouponKey(ids.CouponStock, ids.CouponCode), &coupon, func() string {
			if coupon.State != ledger.CouponUsed || coupon.OpenID != ids.CouponOpenID || coupon.UseRequestNo == "" {
				return fmt.Sprintf("%+v, want USED by %s with a use_request_no", coupon, ids.CouponOpenID)
			}
			return ""
		}},
		{"pay-gift coupon", ledger.CouponKey(ids.GiftStock, ids.GiftCoupon), &gift, func() string {
			if gift.State != ledger.CouponSended || gift.SendChannel != "BUSICOUPON_SEND_CHANNEL_PAYGIFT" || gift.OpenID != ids.GiftOpenID ||
				gift.PayGiftTransactionID == "" || gift.PayGiftTransactionID != ids.GiftTransaction {
				return fmt.Sprintf("%+v, want SENDED via PAYGIFT to %s for transaction %s", gift, ids.GiftOpenID, ids.GiftTransaction)
			}
			return ""
		}},
		{"pay-gift payment", ledger.OrderKey(ids.GiftOrder), &giftPaid, func() string {
			if giftPaid.Status != ledger.TradeSuccess || giftPaid.Total != 12000 || giftPaid.TransactionID != ids.GiftTransaction {
				return fmt.Sprintf("status %s total %d transaction %q, want SUCCESS 12000 %s", giftPaid.Status, giftPaid.Total, giftPaid.TransactionID, ids.GiftTransaction)
			}
			return ""
		}},
		{"NOCASH payment", ledger.OrderKey(ids.NoCashOrder), &noCash, func() string {
			if noCash.Status != ledger.TradeRefund || noCash.Total != 551 || noCash.PayerTotal != 550 || noCash.NoCashTotal != 1 || noCash.SettlementTotal != 550 {
				return fmt.Sprintf("status %s total %d payer %d nocash %d settlement %d, want REFUND 551 550 1 550",
					noCash.Status, noCash.Total, noCash.PayerTotal, noCash.NoCashTotal, noCash.SettlementTotal)
			}
			return ""
		}},
		{"partial refund", ledger.RefundKey(ids.NoCashRefund), &refund, func() string {
			if refund.Status != "SUCCESS" || refund.Refund != 300 || refund.PayerRefund != 299 || refund.SettlementRefund != 299 || len(refund.PredictionDiff) != 0 {
				return fmt.Sprintf("status %s refund %d payer %d settlement %d diff %q, want SUCCESS 300 299 299 none",
					refund.Status, refund.Refund, refund.PayerRefund, refund.SettlementRefund, refund.PredictionDiff)
			}
			return ""
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if err := s.Store.Get(ctx, row.key, row.into); err != nil {
				t.Fatalf("get %s: %v", row.key, err)
			}
			if msg := row.check(); msg != "" {
				t.Errorf("%s: %s", row.key, msg)
			}
		})
	}
}

// TestDemoStopsAtTheFirstUnexpectedAnswer: a token the front door refuses,
// and WeChat Pay refusing the Pay Score order, each stop the run at the
// step that met them with a *StepError naming it.
func TestDemoStopsAtTheFirstUnexpectedAnswer(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(t *testing.T, s *stack.Stack, cfg *demo.Config)
		wantFlow  string
		wantTitle string
		wantText  string
	}{
		{"token refused", func(t *testing.T, s *stack.Stack, cfg *demo.Config) {
			tok, err := s.Auth.Token("someone", time.Hour) // no scope
			if err != nil {
				t.Fatal(err)
			}
			cfg.Token = tok
		}, "setup", "Check that the functions answer", "403"},
		{"WeChat Pay refuses the Pay Score order", func(t *testing.T, s *stack.Stack, _ *demo.Config) {
			s.Sim.SetFault(wxpaysim.Fault{MchID: s.Merchant.MchID, PathPrefix: "/v3/payscore/serviceorder", Kind: wxpaysim.KindError,
				Status: http.StatusForbidden, Code: "NO_AUTH", Count: 1})
		}, "payscore", "Create the service order", "NO_AUTH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startStack(t, &lambdatest.SyncBuffer{})
			var out bytes.Buffer
			cfg := config(t, s, &out)
			tc.prepare(t, s, &cfg)
			res, err := demo.Run(context.Background(), cfg)
			var se *demo.StepError
			if !errors.As(err, &se) || !errors.Is(err, demo.ErrUnexpected) {
				t.Fatalf("Run error = %v, want a *StepError wrapping ErrUnexpected\n%s", err, out.String())
			}
			if se.Flow != tc.wantFlow || !strings.HasPrefix(se.Title, tc.wantTitle) || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("failed at %s / %q: %v; want flow %s, step %q..., mentioning %s", se.Flow, se.Title, err, tc.wantFlow, tc.wantTitle, tc.wantText)
			}
			if res == nil || len(res.Steps) == 0 || res.Passed() || res.Steps[len(res.Steps)-1].Err == nil || slices.Contains(res.Flows, tc.wantFlow) {
				t.Errorf("result after the failure: passed %v, flows %q; want the failing step recorded and %s not completed", res.Passed(), res.Flows, tc.wantFlow)
			}
			if !strings.Contains(out.String(), "FAILED after") {
				t.Errorf("output does not say the run failed:\n%s", out.String())
			}
		})
	}
}

// ---------------------------------------------------------------- the scan

// secret is one value that must not appear in any log.
type secret struct {
	kind  string // what it is; the value itself is never printed
	value string
}

var pemPrivateKey = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// scan returns one finding per leaked secret and per PEM private key
// header, naming the kind and line, never the value.
func scan(text string, secrets []secret) []string {
	var found []string
	lines := strings.Split(text, "\n")
	for _, s := range secrets {
		for i, l := range lines {
			if strings.Contains(l, s.value) {
				found = append(found, fmt.Sprintf("line %d contains the %s", i+1, s.kind))
				break
			}
		}
	}
	for i, l := range lines {
		if pemPrivateKey.MatchString(l) {
			found = append(found, fmt.Sprintf("line %d contains a PEM private key header", i+1))
		}
	}
	return found
}

// stackSecrets lists what must never be logged: the merchant's APIv3 and
// APIv2 keys, the body lines of every private key of the stack, and for
// every notification the stack received its decrypted plaintext (as the
// notify function keeps it for audit) and each openid in it that WeChat Pay
// generated (the openids the app chose itself may appear).
func stackSecrets(t *testing.T, s *stack.Stack, res *demo.Result) []secret {
	t.Helper()
	secrets := []secret{{"merchant APIv3 key", s.Merchant.APIv3Key}, {"merchant APIv2 key", s.Merchant.APIv2Key}}
	keyLines := func(kind string, der []byte) {
		body := base64.StdEncoding.EncodeToString(der)
		for i := 0; i+64 <= len(body); i += 64 {
			secrets = append(secrets, secret{kind + " (PEM body line)", body[i : i+64]})
		}
	}
	blk, _ := pem.Decode(s.Merchant.KeyPEM)
	if blk == nil {
		t.Fatal("merchant KeyPEM holds no PEM block")
	}
	keyLines("merchant private key", blk.Bytes)
	for name, k := range map[string]any{"platform private key": s.Platform.Key, "platform certificate key": s.Platform.CertKey} {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		keyLines(name, der)
	}

	ctx := context.Background()
	chosen := res.IDs.OpenIDs()
	seen := map[string]bool{}
	generated := 0
	for _, d := range s.Sim.Deliveries() {
		if seen[d.NotificationID] || !d.Acked {
			continue
		}
		seen[d.NotificationID] = true
		var rec struct {
			EventType string `dynamodbav:"event_type"`
			Plaintext string `dynamodbav:"plaintext"`
		}
		if err := s.Store.Get(ctx, ledger.NotificationKey(d.NotificationID), &rec); err != nil {
			t.Fatalf("notification record %s: %v", d.NotificationID, err)
		}
		if rec.Plaintext == "" {
			t.Fatalf("notification %s (%s) has no plaintext record", d.NotificationID, d.EventType)
		}
		secrets = append(secrets, secret{rec.EventType + " plaintext", rec.Plaintext})
		var doc any
		if err := json.Unmarshal([]byte(rec.Plaintext), &doc); err != nil {
			t.Fatalf("notification %s plaintext: %v", d.NotificationID, err)
		}
		for _, id := range openIDs(doc) {
			if !slices.Contains(chosen, id) {
				secrets = append(secrets, secret{rec.EventType + " payer openid generated by WeChat Pay", id})
				generated++
			}
		}
	}
	if len(seen) < 6 || generated == 0 {
		t.Fatalf("%d notifications with %d generated openids: the plaintext scan would prove little", len(seen), generated)
	}
	return secrets
}

// openIDs collects every "openid" value in a JSON document.
func openIDs(v any) []string {
	var out []string
	switch n := v.(type) {
	case map[string]any:
		for k, e := range n {
			if s, ok := e.(string); ok && k == "openid" && s != "" {
				out = append(out, s)
				continue
			}
			out = append(out, openIDs(e)...)
		}
	case []any:
		for _, e := range n {
			out = append(out, openIDs(e)...)
		}
	}
	return out
}

// TestScanFindsPlantedSecrets proves the scan can fail: each kind of
// secret planted in an otherwise clean log is found, and the clean log
// passes.
func TestScanFindsPlantedSecrets(t *testing.T) {
	key := "TESTKEY" + strings.Repeat("q", 25)
	pemBody := strings.Repeat("A", 64)
	plain := `{"mchid":"1900000109","out_trade_no":"X1","payer":{"openid":"oGeneratedBySim"}}`
	secrets := []secret{{"APIv3 key", key}, {"private key (PEM body line)", pemBody}, {"plaintext", plain}, {"generated openid", "oGeneratedBySim"}}
	clean := `{"level":"INFO","msg":"notification","id":"n1","outcome":"accepted"}` + "\n[ 1] a step\n"
	if got := scan(clean, secrets); len(got) != 0 {
		t.Fatalf("scan(clean log) = %q, want nothing", got)
	}
	tests := []struct {
		name  string
		plant string
		want  string
	}{
		{"APIv3 key in an error", `{"error":"bad key ` + key + `"}`, "APIv3 key"},
		{"PEM header", "-----BEGIN " + "PRIVATE KEY-----", "PEM private key header"},
		{"RSA PEM header", "-----BEGIN RSA " + "PRIVATE KEY-----", "PEM private key header"},
		{"PEM body line", `"key":"` + pemBody + `"`, "private key (PEM body line)"},
		{"decrypted plaintext", `{"resource":` + plain + `}`, "plaintext"},
		{"generated openid alone", `payer oGeneratedBySim paid`, "generated openid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := scan(clean+tc.plant+"\n", secrets)
			if !slices.ContainsFunc(got, func(f string) bool { return strings.Contains(f, tc.want) && strings.HasPrefix(f, "line 3 ") }) {
				t.Errorf("scan after planting a %s = %q, want a finding on line 3 naming %q", tc.name, got, tc.want)
			}
		})
	}
}

// TestReconciliationDecoding: the record's difference count and first
// differences are read from the answer's shapes, and the count never falls
// below what by_class adds up to.
func TestReconciliationDecoding(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantCount int64
		wantFirst int
	}{
		{"count and first_differences", `{"status":"DONE","differences":2,"by_class":{"amount_total":2},"first_differences":[{"class":"amount_total"},{"class":"amount_total"}]}`, 2, 2},
		{"list under differences", `{"status":"DONE","by_class":{"unindexed":1},"differences":[{"class":"unindexed","key":"PS1"}]}`, 1, 1},
		{"count only", `{"status":"DONE","differences":0,"by_class":{"amount_total":0}}`, 0, 0},
		{"by_class above the count", `{"status":"DONE","differences":1,"by_class":{"duplicate":2,"cross_day":1}}`, 3, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec demo.Reconciliation
			if err := json.Unmarshal([]byte(tc.in), &rec); err != nil {
				t.Fatalf("Unmarshal(%s): %v", tc.in, err)
			}
			if rec.Status != "DONE" || rec.Differences != tc.wantCount || len(rec.First) != tc.wantFirst {
				t.Errorf("Unmarshal(%s) = status %q, %d differences, %d first; want DONE, %d, %d", tc.in, rec.Status, rec.Differences, len(rec.First), tc.wantCount, tc.wantFirst)
			}
		})
	}
	var rec demo.Reconciliation
	if err := json.Unmarshal([]byte(`{"differences":"many"}`), &rec); err == nil {
		t.Error(`Unmarshal({"differences":"many"}) succeeded, want an error`)
	}
}
