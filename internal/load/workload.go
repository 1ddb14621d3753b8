package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Operations of the mixed workload. One cycle of a worker is one of each,
// in this order: a payment order, a Pay Score order created then completed,
// a coupon used. Each is one request and exactly one WeChat Pay call.
const (
	OpPayment          = "payments.create"
	OpPayScoreCreate   = "payscore.create"
	OpPayScoreComplete = "payscore.complete"
	OpCouponUse        = "coupons.use"
)

// opsPerCycle is the number of requests of one workload cycle.
const opsPerCycle = 4

// opOf names the operation of a route key (for handler samples).
var routeOps = map[string]string{
	"POST /payments/orders":                         OpPayment,
	"POST /payscore/orders":                         OpPayScoreCreate,
	"POST /payscore/orders/{out_order_no}/complete": OpPayScoreComplete,
	"POST /coupons/use":                             OpCouponUse,
}

// wechatOp classifies a simulator request as the WeChat Pay call of an
// operation ("" for anything else).
func wechatOp(method, path string) string {
	p, _, _ := strings.Cut(path, "?")
	switch {
	case method == http.MethodPost && p == "/v3/pay/transactions/jsapi":
		return OpPayment
	case method == http.MethodPost && p == "/v3/payscore/serviceorder":
		return OpPayScoreCreate
	case method == http.MethodPost && strings.HasPrefix(p, "/v3/payscore/serviceorder/") && strings.HasSuffix(p, "/complete"):
		return OpPayScoreComplete
	case method == http.MethodPost && p == "/v3/marketing/busifavor/coupons/use":
		return OpCouponUse
	}
	return ""
}

type couponRef struct {
	stockID, code, openid string
}

// setup authorizes the Pay Score users and claims the coupons.
func (r *Runner) setup(ctx context.Context, o Options) error {
	m := r.s.Merchant
	start := time.Now()
	// Orders stay unfinished after complete until WeChat deducts; the
	// workload keeps many per user, so the open-order limit is lifted.
	if err := r.s.Sim.SetPayScoreService(m.MchID, wxpaysim.PayScoreService{ServiceID: m.ServiceID, AppIDs: []string{m.AppID},
		NotifyURL: r.s.FrontURL + "/notify/payscore", MaxOpenOrders: 1 << 30}); err != nil {
		return fmt.Errorf("load: pay score service: %w", err)
	}
	var ids []string
	for i := 0; i < o.PayScoreUsers; i++ {
		openid := fmt.Sprintf("oLoadPS%s_%02d", r.run, i)
		res, err := r.s.Sim.AuthorizePayScore(ctx, wxpaysim.PayScoreUser{MchID: m.MchID, OpenID: openid})
		if err != nil {
			return fmt.Errorf("load: authorize %s: %w", openid, err)
		}
		r.psUsers = append(r.psUsers, openid)
		ids = append(ids, res.NotificationID)
	}
	if o.Coupons > 0 {
		more, err := r.setupCoupons(ctx, o.Coupons)
		if err != nil {
			return err
		}
		ids = append(ids, more...)
	}
	// Every callback of the setup is applied before the measurement starts,
	// so the workload finds the ledger as an app would (authorizations and
	// coupons known) and no delivery competes with it.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, id := range ids {
		if err := r.s.Sim.WaitDelivered(wctx, id); err != nil {
			return fmt.Errorf("load: setup notification: %w", err)
		}
	}
	r.logf("setup: %d Pay Score users, %d coupons, %d callbacks applied in %s", len(r.psUsers), len(r.coupons), len(ids),
		time.Since(start).Round(time.Millisecond))
	return nil
}

// setupCoupons creates a WECHATPAY_MODE stock through the coupons function
// and has users claim n coupons of it in the simulated mini-program plugin.
func (r *Runner) setupCoupons(ctx context.Context, n int) ([]string, error) {
	m := r.s.Merchant
	if a, err := r.call(ctx, http.MethodPut, "/coupons/callback", ""); err != nil || a.status != http.StatusOK {
		return nil, fmt.Errorf("load: set coupon callback: %d %s (%v)", a.status, a.body, err)
	}
	now := time.Now()
	stock := map[string]any{
		"stock_name": "负载测试券", "comment": "load", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": "WECHATPAY_MODE",
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": ledger.WechatTime(now.Add(-time.Hour)),
				"available_end_time": ledger.WechatTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 100, "transaction_minimum": 200},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": max(n+10, 100), "max_coupons_per_user": 100},
		"notify_config":   map[string]any{"notify_appid": m.AppID},
	}
	body, err := json.Marshal(stock)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	a, err := r.call(ctx, http.MethodPost, "/coupons/stocks", string(body))
	if err != nil || a.status != http.StatusOK {
		return nil, fmt.Errorf("load: create stock: %d %s (%v)", a.status, a.body, err)
	}
	var st struct {
		StockID string `json:"stock_id"`
	}
	if err := json.Unmarshal(a.body, &st); err != nil || st.StockID == "" {
		return nil, fmt.Errorf("load: create stock answer %s: %v", a.body, err)
	}
	r.stockID = st.StockID
	if err := r.s.Sim.SetAPIv2Key(m.MchID, m.APIv2Key); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	var ids []string
	for u := 0; len(r.coupons) < n; u++ {
		openid := fmt.Sprintf("oLoadCpn%s_%03d", r.run, u)
		for got := 0; got < 100 && len(r.coupons) < n; {
			k := min(10, 100-got, n-len(r.coupons))
			params := make([]wxpaysim.PluginCouponParam, k)
			for i := range params {
				params[i] = wxpaysim.PluginCouponParam{StockID: st.StockID, OutRequestNo: fmt.Sprintf("LDCPN%s%03d%03d", r.run, u, got+i)}
			}
			res, err := r.s.Sim.ClaimCoupons(ctx, wxpaysim.CouponClaim{OpenID: openid, AppID: m.AppID, SendCouponMerchant: m.MchID,
				SendCouponParams: params, Sign: wxpaysim.PluginSign(m.APIv2Key, m.MchID, params)})
			if err != nil {
				return nil, fmt.Errorf("load: claim coupons: %w", err)
			}
			for _, c := range res.Results {
				if c.Code != "SUCCESS" {
					return nil, fmt.Errorf("load: claim coupon: %s %s", c.Code, c.Message)
				}
				r.coupons = append(r.coupons, couponRef{stockID: st.StockID, code: c.CouponCode, openid: openid})
			}
			ids = append(ids, res.NotificationIDs...)
			got += k
		}
	}
	return ids, nil
}

// takeCoupon hands out an unused coupon.
func (r *Runner) takeCoupon() (couponRef, bool) {
	r.couponMu.Lock()
	defer r.couponMu.Unlock()
	if len(r.coupons) == 0 {
		return couponRef{}, false
	}
	c := r.coupons[len(r.coupons)-1]
	r.coupons = r.coupons[:len(r.coupons)-1]
	return c, true
}

// CouponsLeft is how many claimed coupons are still unused.
func (r *Runner) CouponsLeft() int {
	r.couponMu.Lock()
	defer r.couponMu.Unlock()
	return len(r.coupons)
}

func paymentBody(no string) string {
	return fmt.Sprintf(`{"trade_type":"JSAPI","out_trade_no":%q,"description":"负载测试商品","amount":{"total":100},"payer":{"openid":"oLoadPayer01"}}`, no)
}

func payScoreCreateBody(no, openid string, now time.Time) string {
	return fmt.Sprintf(`{"out_order_no":%q,"openid":%q,"service_introduction":"充电宝租借","time_range":{"start_time":%q},`+
		`"location":{"start_location":"深圳腾大"},"risk_fund":{"name":"ESTIMATE_ORDER_COST","amount":9900,"description":"充电宝押金"}}`,
		no, openid, ledger.PayScoreTime(now.Add(-time.Hour)))
}

func payScoreCompleteBody(now time.Time) string {
	return fmt.Sprintf(`{"post_payments":[{"name":"租借费","amount":400,"description":"每小时1元","count":4}],"total_amount":400,`+
		`"time_range":{"end_time":%q}}`, ledger.PayScoreTime(now))
}

func couponUseBody(c couponRef) string {
	return fmt.Sprintf(`{"stock_id":%q,"coupon_code":%q,"openid":%q}`, c.stockID, c.code, c.openid)
}

// result is one workload request at the client.
type result struct {
	op      string
	status  int
	latency time.Duration
	body    []byte
	err     error
}

// cycle runs one workload cycle; worker picks the Pay Score user.
func (r *Runner) cycle(ctx context.Context, worker int, out []result) []result {
	now := time.Now()
	send := func(op, method, path, body string, want int) bool {
		a, err := r.call(ctx, method, path, body)
		out = append(out, result{op: op, status: a.status, latency: a.latency, body: a.body, err: err})
		return err == nil && a.status == want
	}
	send(OpPayment, http.MethodPost, "/payments/orders", paymentBody("LDPAY"+r.next()), http.StatusOK)
	no := "LDPS" + r.next()
	if send(OpPayScoreCreate, http.MethodPost, "/payscore/orders", payScoreCreateBody(no, r.psUsers[worker%len(r.psUsers)], now), http.StatusCreated) {
		send(OpPayScoreComplete, http.MethodPost, "/payscore/orders/"+no+"/complete", payScoreCompleteBody(now), http.StatusOK)
	} else {
		out = append(out, result{op: OpPayScoreComplete, err: fmt.Errorf("not sent: the create of %s failed", no)})
	}
	if c, ok := r.takeCoupon(); ok {
		send(OpCouponUse, http.MethodPost, "/coupons/use", couponUseBody(c), http.StatusOK)
	} else {
		out = append(out, result{op: OpCouponUse, err: fmt.Errorf("no coupon left: claim more in setup")})
	}
	return out
}

// wantStatus is the success status of each operation.
var wantStatus = map[string]int{OpPayment: http.StatusOK, OpPayScoreCreate: http.StatusCreated,
	OpPayScoreComplete: http.StatusOK, OpCouponUse: http.StatusOK}

// OpStats are one operation's figures within a level.
type OpStats struct {
	Requests    int
	Errors      int
	P50, P99    time.Duration // client latency
	OverheadP99 time.Duration // handler overhead excluding I/O
	WeChatCalls int           // the operation's WeChat Pay calls the simulator saw
}

// Level is what one concurrency level measured.
type Level struct {
	Concurrency int
	Requests    int
	Errors      int
	Elapsed     time.Duration
	Throughput  float64       // requests per second
	P50, P99    time.Duration // client-side latency through the front door
	// Handler figures from the timing middleware (every request of the level).
	HandlerP50, HandlerP99   time.Duration
	IOP50, IOP99             time.Duration // DynamoDB + WeChat Pay + waits
	OverheadP50, OverheadP99 time.Duration // in-process, I/O excluded
	OverheadMax              time.Duration
	// OverheadNoCrypto is the overhead with the protocol's RSA work left on
	// the critical path (the answers' verification; the signatures overlap
	// I/O) taken out at its calibrated cost: what the handlers' own code
	// costs.
	OverheadNoCryptoP50, OverheadNoCryptoP99 time.Duration
	DDBCallsPerRequest                       float64
	ByOp                                     map[string]OpStats
	OtherWeChatCalls                         int      // simulator requests that belong to no operation
	Problems                                 []string // errors and WeChat call mismatches
	Samples                                  []Sample // the handler samples, for callers that want more
}

// String is the level's one-line summary.
func (l *Level) String() string {
	return fmt.Sprintf("c=%-3d requests=%-5d errors=%d rps=%7.1f latency p50=%-9s p99=%-9s | handler p50=%-9s p99=%-9s io p50=%-9s | overhead p50=%-9s p99=%-9s max=%-9s without RSA p50=%-9s p99=%s",
		l.Concurrency, l.Requests, l.Errors, l.Throughput, rnd(l.P50), rnd(l.P99), rnd(l.HandlerP50), rnd(l.HandlerP99), rnd(l.IOP50),
		rnd(l.OverheadP50), rnd(l.OverheadP99), rnd(l.OverheadMax), rnd(l.OverheadNoCryptoP50), rnd(l.OverheadNoCryptoP99))
}

func rnd(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// RunLevel sends about requests requests (whole cycles of four) with
// concurrency workers, stopping early at maxDuration, and measures them.
func (r *Runner) RunLevel(ctx context.Context, concurrency, requests int, maxDuration time.Duration) (*Level, error) {
	if concurrency < 1 || requests < 1 {
		return nil, fmt.Errorf("load: concurrency and requests must be positive")
	}
	cycles := int64((requests + opsPerCycle - 1) / opsPerCycle)
	if left := r.CouponsLeft(); int64(left) < cycles {
		return nil, fmt.Errorf("load: %d cycles need %d coupons, %d left", cycles, cycles, left)
	}
	simBefore := len(r.s.Sim.Requests())
	deadline := time.Now().Add(maxDuration)
	var taken atomic.Int64
	perWorker := make([][]result, concurrency)
	var wg sync.WaitGroup
	r.rec.start()
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) && taken.Add(1) <= cycles {
				perWorker[w] = r.cycle(ctx, w, perWorker[w])
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	samples := r.rec.stop()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load: level c=%d: %w", concurrency, err)
	}
	l := &Level{Concurrency: concurrency, Elapsed: elapsed, ByOp: map[string]OpStats{}, Samples: samples}
	var lat []time.Duration
	opLat := map[string][]time.Duration{}
	for _, rs := range perWorker {
		for _, res := range rs {
			st := l.ByOp[res.op]
			if res.err != nil || res.status != wantStatus[res.op] {
				l.Errors++
				st.Errors++
				if len(l.Problems) < 10 {
					l.Problems = append(l.Problems, fmt.Sprintf("%s: %d %s %v", res.op, res.status, trim(res.body), res.err))
				}
			}
			if res.err == nil {
				l.Requests++
				st.Requests++
				lat = append(lat, res.latency)
				opLat[res.op] = append(opLat[res.op], res.latency)
			}
			l.ByOp[res.op] = st
		}
	}
	l.Throughput = float64(l.Requests) / elapsed.Seconds()
	l.P50, l.P99 = Percentile(lat, 50), Percentile(lat, 99)
	var total, io, over, own []time.Duration
	opOver := map[string][]time.Duration{}
	ddbCalls := 0
	for _, s := range samples {
		total, io, over = append(total, s.Total), append(io, s.IO()), append(over, s.Overhead())
		own = append(own, s.Overhead()-r.crypto.estimate(s))
		opOver[routeOps[s.Route]] = append(opOver[routeOps[s.Route]], s.Overhead())
		ddbCalls += s.DDBCalls
		if s.Overhead() > l.OverheadMax {
			l.OverheadMax = s.Overhead()
		}
	}
	l.HandlerP50, l.HandlerP99 = Percentile(total, 50), Percentile(total, 99)
	l.IOP50, l.IOP99 = Percentile(io, 50), Percentile(io, 99)
	l.OverheadP50, l.OverheadP99 = Percentile(over, 50), Percentile(over, 99)
	l.OverheadNoCryptoP50, l.OverheadNoCryptoP99 = Percentile(own, 50), Percentile(own, 99)
	if len(samples) > 0 {
		l.DDBCallsPerRequest = float64(ddbCalls) / float64(len(samples))
	}
	if len(samples) != l.Requests {
		l.Problems = append(l.Problems, fmt.Sprintf("the timing middleware saw %d handler invocations for %d answered requests", len(samples), l.Requests))
	}
	calls := map[string]int{}
	for _, rec := range r.s.Sim.Requests()[simBefore:] {
		if op := wechatOp(rec.Method, rec.Path); op != "" {
			calls[op]++
		} else {
			l.OtherWeChatCalls++
		}
	}
	ops := make([]string, 0, len(l.ByOp))
	for op := range l.ByOp {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		st := l.ByOp[op]
		st.P50, st.P99 = Percentile(opLat[op], 50), Percentile(opLat[op], 99)
		st.OverheadP99 = Percentile(opOver[op], 99)
		st.WeChatCalls = calls[op]
		// Every request sent, whatever its answer, is one WeChat Pay call.
		if st.WeChatCalls != st.Requests {
			l.Problems = append(l.Problems, fmt.Sprintf("%s: %d requests made %d WeChat Pay calls, want exactly one each", op, st.Requests, st.WeChatCalls))
		}
		l.ByOp[op] = st
	}
	if l.OtherWeChatCalls != 0 {
		l.Problems = append(l.Problems, fmt.Sprintf("%d WeChat Pay calls outside the workload's operations", l.OtherWeChatCalls))
	}
	return l, nil
}

func trim(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
