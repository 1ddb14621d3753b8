package billing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/s3fake"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/billing"
	"github.com/wxpay-serverless/wxpay-serverless/shared/blobstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/metrics"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

const bucket = "wxpay-bills-test"

// clock is the one clock of a test world: simulator, WeChat client and
// handler all read it, so it can move to the next morning when the day's
// bills exist.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off = time.Until(t)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// world: DynamoDB Local, the simulator, an S3 fake behind the real SDK,
// and the billing handler, on one clock that starts at 12:00 today
// (Asia/Shanghai).
type world struct {
	t      *testing.T
	env    *lambdatest.Env
	calls  *lambdatest.CallCounter
	sim    *wxpaysim.Sim
	clock  *clock
	s3     *s3fake.Server
	bills  blobstore.Store
	client *wxpay.Client
	h      *billing.Handler
	date   string
	emf    *lambdatest.SyncBuffer
	sleeps []time.Duration
	mu     sync.Mutex
}

func newWorld(t *testing.T, opts ...billing.Option) *world {
	t.Helper()
	w := &world{t: t, calls: &lambdatest.CallCounter{}, clock: &clock{}, emf: &lambdatest.SyncBuffer{}}
	w.env = lambdatest.NewEnv(t, w.calls.Option)
	today := time.Now().In(ledger.Shanghai)
	noon := time.Date(today.Year(), today.Month(), today.Day(), 12, 0, 0, 0, ledger.Shanghai)
	w.clock.Set(noon)
	w.date = noon.Format(time.DateOnly)

	ack := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { rw.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(ack.Close)
	sim, err := wxpaysim.New(wxpaysim.Config{Platform: w.env.Platform, Now: w.clock.Now, TimeScale: 0.001})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(w.env.Merchant, wxpaysim.ModeMixed, ack.URL+"/notify/payments")); err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(sim)
	t.Cleanup(func() { sim.Close(); simSrv.Close() })
	w.sim = sim
	w.client = wxpay.New(wxpay.Config{Credentials: w.env.Secrets, BaseURL: simSrv.URL, Now: w.clock.Now})

	w.s3 = s3fake.New(bucket)
	s3Srv := httptest.NewServer(w.s3)
	t.Cleanup(s3Srv.Close)
	cfg := aws.Config{Region: "ap-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""), HTTPClient: s3Srv.Client()}
	w.bills = &blobstore.S3{API: s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(s3Srv.URL); o.UsePathStyle = true }), Bucket: bucket}

	deps := w.env.Deps
	deps.WeChat, deps.Bills, deps.Now = w.client, w.bills, w.clock.Now
	deps.Metrics = &metrics.EMF{Namespace: "wxpay-serverless", W: w.emf}
	tmp := t.TempDir()
	all := append([]billing.Option{func(p *billing.Pipeline) {
		p.TempDir = tmp
		p.Sleep = w.sleep
	}}, opts...)
	w.h = billing.New(deps, all...)
	return w
}

// sleep is the pipeline's wait: it moves the world clock instead.
func (w *world) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	w.sleeps = append(w.sleeps, d)
	w.mu.Unlock()
	w.clock.Advance(d)
	return nil
}

// nextMorning moves the world to 10:00 the next day: the bill exists.
func (w *world) nextMorning() { w.at(10, 0) }

// at moves the world to hh:mm the day after w.date.
func (w *world) at(hh, mm int) {
	d, _ := time.ParseInLocation(time.DateOnly, w.date, ledger.Shanghai)
	w.clock.Set(d.AddDate(0, 0, 1).Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute))
}

func (w *world) do(method, path string, body, out any) {
	w.t.Helper()
	var q url.Values
	if method == http.MethodGet && strings.HasPrefix(path, "/v3/pay/") {
		q = url.Values{"mchid": {w.env.Merchant.MchID}}
	}
	if _, err := w.client.Do(context.Background(), wxpay.Request{Method: method, Path: path, Body: body, Query: q}, out); err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
}

func (w *world) put(key store.Key, index string, sk string, v any) {
	w.t.Helper()
	if err := w.env.Store.Put(context.Background(), &store.Put{Key: key, Index: store.IndexKey{PK: index, SK: sk}, Value: v}); err != nil {
		w.t.Fatal(err)
	}
}

type transaction struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	TradeType     string `json:"trade_type"`
	TradeState    string `json:"trade_state"`
	SuccessTime   string `json:"success_time"`
	Amount        struct {
		Total      int64 `json:"total"`
		PayerTotal int64 `json:"payer_total"`
	} `json:"amount"`
	PromotionDetail []ledger.Promotion `json:"promotion_detail"`
}

// pay makes a JSAPI order, pays it in the simulator with the promotions,
// and records it in the ledger the way the notify function does
// (ledger.Order under DAY#PAY#<day of success_time>).
func (w *world) pay(no string, total int64, promos ...wxpaysim.Promotion) ledger.Order {
	w.t.Helper()
	m := w.env.Merchant
	w.do(http.MethodPost, "/v3/pay/transactions/jsapi", map[string]any{"appid": m.AppID, "mchid": m.MchID, "description": "商品, 大杯",
		"out_trade_no": no, "amount": map[string]any{"total": total, "currency": "CNY"}, "payer": map[string]any{"openid": "o-user-1"}}, nil)
	if _, err := w.sim.PayOrder(context.Background(), wxpaysim.Payment{MchID: m.MchID, OutTradeNo: no, Promotions: promos}); err != nil {
		w.t.Fatal(err)
	}
	var tx transaction
	w.do(http.MethodGet, "/v3/pay/transactions/out-trade-no/"+no, nil, &tx)
	for i := range tx.PromotionDetail {
		tx.PromotionDetail[i].Type = ledger.NormalizeCouponType(tx.PromotionDetail[i].Type)
	}
	coupon, noCash, settlement := ledger.Settlement(tx.Amount.Total, tx.PromotionDetail)
	o := ledger.Order{OutTradeNo: no, TransactionID: tx.TransactionID, MchID: m.MchID, TradeType: tx.TradeType, Status: ledger.TradeSuccess,
		Total: tx.Amount.Total, PayerTotal: tx.Amount.PayerTotal, SettlementTotal: settlement, CouponTotal: coupon, NoCashTotal: noCash,
		Promotions: tx.PromotionDetail, SuccessTime: tx.SuccessTime, Currency: "CNY"}
	paid, _ := time.Parse(time.RFC3339, tx.SuccessTime)
	w.put(ledger.OrderKey(no), ledger.DayIndex(billing.DayKindPay, ledger.Day(paid)), no, o)
	return o
}

type refundAnswer struct {
	RefundID    string `json:"refund_id"`
	OutRefundNo string `json:"out_refund_no"`
	Status      string `json:"status"`
	CreateTime  string `json:"create_time"`
	Amount      struct {
		Refund           int64 `json:"refund"`
		Total            int64 `json:"total"`
		PayerTotal       int64 `json:"payer_total"`
		PayerRefund      int64 `json:"payer_refund"`
		SettlementRefund int64 `json:"settlement_refund"`
		DiscountRefund   int64 `json:"discount_refund"`
	} `json:"amount"`
}

// refund refunds part of an order in the simulator and records the refund
// as the payments function does (DAY#REFUND#<day requested>).
func (w *world) refund(o ledger.Order, no string, amount int64) ledger.RefundRecord {
	w.t.Helper()
	w.do(http.MethodPost, "/v3/refund/domestic/refunds", map[string]any{"out_trade_no": o.OutTradeNo, "out_refund_no": no,
		"amount": map[string]any{"refund": amount, "total": o.Total, "currency": "CNY"}}, nil)
	var a refundAnswer
	w.do(http.MethodGet, "/v3/refund/domestic/refunds/"+no, nil, &a)
	r := ledger.RefundRecord{OutRefundNo: no, OutTradeNo: o.OutTradeNo, OrderKind: ledger.KindOrder, OrderNo: o.OutTradeNo,
		TransactionID: o.TransactionID, RefundID: a.RefundID, Status: a.Status, Submitted: true, Refund: a.Amount.Refund, Total: a.Amount.Total,
		PayerTotal: a.Amount.PayerTotal, PayerRefund: a.Amount.PayerRefund, DiscountRefund: a.Amount.DiscountRefund,
		SettlementRefund: a.Amount.SettlementRefund, CreateTime: a.CreateTime, CreatedAt: ledger.WechatTime(w.clock.Now())}
	w.put(ledger.RefundKey(no), ledger.DayIndex(billing.DayKindRefund, ledger.Day(w.clock.Now())), no, r)
	return r
}

// deduct records a Pay Score deduction in the simulator (an AUTH
// transaction with attach wxzff|<order_id>|<out_order_no>) and the settled
// service order in the ledger (DAY#PAYSCORE#<day paid>).
func (w *world) deduct(outOrderNo, orderID string, amount int64) ledger.PayScoreOrder {
	w.t.Helper()
	res, err := w.sim.RecordPaidTransaction(context.Background(), wxpaysim.PaidTransaction{MchID: w.env.Merchant.MchID, Total: amount,
		Attach: "wxzff|" + orderID + "|" + outOrderNo, Description: "支付分服务"})
	if err != nil {
		w.t.Fatal(err)
	}
	now := w.clock.Now()
	o := ledger.PayScoreOrder{OutOrderNo: outOrderNo, OrderID: orderID, State: ledger.PayScoreDone, StateDescription: ledger.PayScoreUserPaid,
		TotalAmount: amount, PaidAmount: amount, TransactionID: res.TransactionID, PaidTime: ledger.PayScoreTime(now), PaidType: "NEWTON"}
	w.put(ledger.PayScoreOrderKey(outOrderNo), ledger.DayIndex(billing.DayKindPayScore, ledger.Day(now)), outOrderNo, o)
	return o
}

// cleanDay: CASH and NOCASH coupon payments, partial refunds of both, a
// plain payment and a Pay Score deduction.
func (w *world) cleanDay() {
	a := w.pay("ORDER-CASH", 10000, wxpaysim.Promotion{Type: "CASH", Amount: 500})
	b := w.pay("ORDER-NOCASH", 10000, wxpaysim.Promotion{Type: "NOCASH", Amount: 1000})
	c := w.pay("ORDER-BOTH", 2000, wxpaysim.Promotion{Type: "CASH", Amount: 300}, wxpaysim.Promotion{Type: "NOCASH", Amount: 200})
	w.pay("ORDER-PLAIN", 1)
	w.clock.Advance(time.Hour)
	w.refund(a, "REFUND-CASH-1", 3000)
	w.refund(b, "REFUND-NOCASH-1", 5000)
	w.refund(c, "REFUND-BOTH-1", 1000)
	w.refund(c, "REFUND-BOTH-2", 333)
	w.deduct("ORDER-PS-1", "1000000000201911061234567890", 3000)
}

// invoke calls the handler with an HTTP API event.
func (w *world) invoke(method, path, date string, body string) (int, map[string]any) {
	w.t.Helper()
	ev := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: method + " /billing/reconciliations/{bill_date}", RawPath: path,
		Body: body, PathParameters: map[string]string{"bill_date": date},
		RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path}}}
	out, err := w.h.Handle(context.Background(), billing.Event{HTTP: &ev})
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp := out.(events.APIGatewayV2HTTPResponse)
	var m map[string]any
	if resp.Body != "" {
		if err := json.Unmarshal([]byte(resp.Body), &m); err != nil {
			w.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, resp.Body)
		}
	}
	return resp.StatusCode, m
}

func (w *world) object(key string) []byte {
	w.t.Helper()
	b, ok := w.s3.Object(bucket, key)
	if !ok {
		w.t.Fatalf("no object %s in %v", key, w.s3.Keys(bucket))
	}
	return b
}

func (w *world) keys(prefix string) []string {
	var out []string
	for _, k := range w.s3.Keys(bucket) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

func (w *world) record() billing.Record {
	w.t.Helper()
	var r billing.Record
	if err := w.env.Store.Get(context.Background(), billing.RunKey(w.date), &r); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// billRequests counts the simulator requests to a path prefix.
func (w *world) billRequests(prefix string) int {
	n := 0
	for _, r := range w.sim.Requests() {
		if strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

func dump(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", " ")
	_ = enc.Encode(v)
	return fmt.Sprint(b.String())
}
