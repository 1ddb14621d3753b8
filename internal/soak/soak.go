// Package soak is the notification storm: thousands of signed notifications
// of every event type, with duplicates, out-of-order deliveries, DynamoDB
// throttling and lost answers, and handlers cancelled mid-request, delivered
// by concurrent workers with WeChat Pay's retry schedule (time-scaled) until
// acknowledged. Afterwards the ledger must equal the truth the storm knows:
// nothing lost, nothing applied twice, every duplicate acknowledged.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/payments"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// Config shapes a storm.
type Config struct {
	DynamoDBEndpoint string
	Table            string
	Deliveries       int     // total deliveries including duplicates (10,000 for make soak)
	DuplicateRate    float64 // share of deliveries that are duplicates (0.30)
	OutOfOrderRate   float64 // share of deliveries moved later in the stream (0.05)
	Workers          int     // concurrent deliverers (8)
	ThrottleRate     float64 // DynamoDB calls failed before sending
	LostRate         float64 // DynamoDB calls whose answer is lost after applying
	CrashRate        float64 // handler invocations cancelled mid-request
	TimeScale        float64 // WeChat retry schedule multiplier
	// FollowUpWorkers query payments live (GET /payments/orders/{no}
	// ?live=true through the payments function, which applies a payment the
	// ledger has not seen: the same change as its notification) while the
	// storm runs; QueryFaultEvery makes one in that many of WeChat Pay's
	// order queries answer 500 SYSTEM_ERROR (0: none).
	FollowUpWorkers int
	QueryFaultEvery int
	Seed            uint64
	Progress        io.Writer // optional progress lines
}

// Report is what a storm measured.
type Report struct {
	Deliveries, Unique, Duplicates, OutOfOrder int
	Attempts                                   int64
	Answers                                    map[int]int64 // HTTP status -> count over all attempts
	Throttled, LostAnswers, Crashes            int64
	// Follow-up queries: how many were sent, their answers, how many
	// recorded the payment (before its notification), and how many of
	// WeChat Pay's order queries answered an injected 5xx.
	FollowUps           int64
	FollowUpAnswers     map[int]int64
	FollowUpsApplied    int64
	QueryFaults         int
	Acked, Unacked      int
	Lost, DoubleApplied int
	Problems            []string
	Elapsed             time.Duration
}

// String prints the figures.
func (r *Report) String() string {
	var statuses []string
	for code, n := range r.Answers {
		statuses = append(statuses, fmt.Sprintf("%d:%d", code, n))
	}
	sort.Strings(statuses)
	var follow []string
	for code, n := range r.FollowUpAnswers {
		follow = append(follow, fmt.Sprintf("%d:%d", code, n))
	}
	sort.Strings(follow)
	return fmt.Sprintf("deliveries=%d unique=%d duplicates=%d out_of_order=%d attempts=%d answers={%s} "+
		"follow_up_queries=%d answers={%s} applied_by_query=%d "+
		"injected: ddb_throttled=%d ddb_lost_answers=%d handler_crashes=%d wechat_query_5xx=%d | acked=%d unacked=%d lost=%d double=%d elapsed=%s rate=%.0f/s",
		r.Deliveries, r.Unique, r.Duplicates, r.OutOfOrder, r.Attempts, strings.Join(statuses, " "),
		r.FollowUps, strings.Join(follow, " "), r.FollowUpsApplied,
		r.Throttled, r.LostAnswers, r.Crashes, r.QueryFaults, r.Acked, r.Unacked, r.Lost, r.DoubleApplied, r.Elapsed.Round(time.Millisecond),
		float64(r.Deliveries)/r.Elapsed.Seconds())
}

// schedule is WeChat Pay's retry schedule after a failed delivery.
var schedule = [...]time.Duration{15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
	20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute, 3 * time.Hour, 3 * time.Hour,
	3 * time.Hour, 6 * time.Hour, 6 * time.Hour}

// truth is the expected final ledger state of one entity.
type truth struct {
	key   store.Key
	attr  string // state attribute
	state string
	// amount checks for payments
	total, payerTotal, settlement int64
	eventType                     string
	entity                        string // business entity id for event counting
}

type note struct {
	id, eventType, channel, originalType string
	plain                                []byte
	entity                               string
}

type delivery struct {
	n        *note
	body     []byte
	attempts int
}

// publisher records the distinct domain event ids per event type + entity
// (the outbox publishes at least once: a republished event has the same id).
type publisher struct {
	mu     sync.Mutex
	counts map[string]map[string]bool
}

func (p *publisher) Publish(_ context.Context, evs []domainevent.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range evs {
		var d struct {
			Ledger map[string]any `json:"ledger"`
		}
		_ = json.Unmarshal(e.Detail, &d)
		k := e.DetailType + "|" + entityOf(e.DetailType, d.Ledger)
		if p.counts[k] == nil {
			p.counts[k] = map[string]bool{}
		}
		p.counts[k][e.ID] = true
	}
	return nil
}

func entityOf(eventType string, l map[string]any) string {
	s := func(k string) string { v, _ := l[k].(string); return v }
	switch {
	case eventType == notify.EventTransactionSuccess:
		return s("out_trade_no")
	case strings.HasPrefix(eventType, "REFUND."):
		return s("out_refund_no")
	case eventType == notify.EventPayScoreOpen || eventType == notify.EventPayScoreClose:
		return s("openid")
	case eventType == notify.EventPayScorePaid:
		return s("out_order_no")
	case eventType == notify.EventCouponSend:
		return s("coupon_code")
	}
	return "?"
}

// Run builds a stack on the given DynamoDB, storms its notify function and
// checks the ledger.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 0.0005
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	faults := &DynamoDBFaults{ThrottleRate: cfg.ThrottleRate, LostRate: cfg.LostRate}
	pub := &publisher{counts: map[string]map[string]bool{}}
	// The handler under test gets the faulty client; seeding and checking
	// use a clean one.
	s, err := stack.Start(ctx, stack.Options{DynamoDBEndpoint: cfg.DynamoDBEndpoint, Table: cfg.Table,
		DynamoDBOptions: []func(*dynamodb.Options){faults.Option}, Events: pub})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	clean := ddbstore.New(ddblocal.Client(cfg.DynamoDBEndpoint), cfg.Table)

	unique := int(float64(cfg.Deliveries) * (1 - cfg.DuplicateRate))
	var record recordPayment
	if cfg.FollowUpWorkers > 0 {
		record = simRecorder(s)
	}
	notes, truths, known, err := generate(ctx, clean, s.Merchant, rng, unique, record)
	if err != nil {
		return nil, err
	}
	rep := &Report{Answers: map[int]int64{}, FollowUpAnswers: map[int]int64{}, Unique: len(notes)}

	// The stream: every note once, plus duplicates (half exact resends,
	// half the same business event under a new notification id).
	var stream []*delivery
	for _, n := range notes {
		stream = append(stream, &delivery{n: n})
	}
	for len(stream) < cfg.Deliveries {
		orig := notes[rng.IntN(len(notes))]
		dup := orig
		if rng.IntN(2) == 0 {
			cp := *orig
			cp.id = "EV-" + testkeys.RandomString(16)
			dup = &cp
		}
		stream = append(stream, &delivery{n: dup})
		rep.Duplicates++
	}
	rng.Shuffle(len(stream), func(i, j int) { stream[i], stream[j] = stream[j], stream[i] })
	// Out of order: move a share of deliveries far later in the stream.
	moves := int(float64(len(stream)) * cfg.OutOfOrderRate)
	for i := 0; i < moves; i++ {
		a := rng.IntN(len(stream) / 2)
		b := len(stream)/2 + rng.IntN(len(stream)/2)
		stream[a], stream[b] = stream[b], stream[a]
	}
	rep.OutOfOrder = moves
	rep.Deliveries = len(stream)
	for _, d := range stream {
		d.body, err = envelope(d.n, s.Merchant.APIv3Key)
		if err != nil {
			return nil, err
		}
	}

	// The notify function under test, with handlers cancelled mid-request.
	h := notify.New(s.Deps)
	var crashes atomic.Int64
	var crashMu sync.Mutex
	crashRng := rand.New(rand.NewPCG(cfg.Seed, 11))
	target := frontdoor.Target{Function: "notify", Routes: h.Routes(), Handle: func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		crashMu.Lock()
		crash := crashRng.Float64() < cfg.CrashRate
		delay := time.Duration(crashRng.IntN(4000)) * time.Microsecond
		crashMu.Unlock()
		if crash {
			crashes.Add(1)
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			timer := time.AfterFunc(delay, cancel)
			defer timer.Stop()
			defer cancel()
		}
		return h.Handle(ctx, e)
	}}
	srv := httptest.NewServer(frontdoor.New(target))
	defer srv.Close()

	start := time.Now()
	queue := make(chan *delivery, len(stream))
	var pending sync.WaitGroup
	var mu sync.Mutex
	for _, d := range stream {
		pending.Add(1)
		queue <- d
	}
	done := make(chan struct{})
	var acked, given int64
	for w := 0; w < cfg.Workers; w++ {
		go func() {
			for {
				select {
				case <-done:
					return
				case d := <-queue:
					status := deliver(ctx, srv.Client(), srv.URL, s, d)
					mu.Lock()
					rep.Attempts++
					rep.Answers[status]++
					mu.Unlock()
					if status >= 200 && status < 300 {
						atomic.AddInt64(&acked, 1)
						pending.Done()
						continue
					}
					d.attempts++
					if d.attempts > len(schedule) {
						atomic.AddInt64(&given, 1)
						pending.Done()
						continue
					}
					wait := time.Duration(float64(schedule[d.attempts-1]) * cfg.TimeScale)
					time.AfterFunc(wait, func() { queue <- d })
				}
			}
		}()
	}
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			t := time.NewTicker(2 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					fmt.Fprintf(cfg.Progress, "soak: %d/%d acknowledged, %d attempts, %.0f/s\n", atomic.LoadInt64(&acked),
						len(stream), func() int64 { mu.Lock(); defer mu.Unlock(); return rep.Attempts }(), float64(atomic.LoadInt64(&acked))/time.Since(start).Seconds())
				}
			}
		}()
	}
	followDone := make(chan struct{})
	var followers sync.WaitGroup
	const queryPath = "/v3/pay/transactions/out-trade-no/"
	if cfg.FollowUpWorkers > 0 && len(known) > 0 {
		if cfg.QueryFaultEvery > 0 {
			s.Sim.SetFault(wxpaysim.Fault{MchID: s.Merchant.MchID, PathPrefix: queryPath, Kind: wxpaysim.KindError,
				Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Every: cfg.QueryFaultEvery})
		}
		pay := payments.New(s.Deps)
		psrv := httptest.NewServer(frontdoor.New(frontdoor.Target{Function: "payments", Routes: pay.Routes(), Handle: pay.Handle}))
		defer psrv.Close()
		for w := range cfg.FollowUpWorkers {
			followers.Add(1)
			go func() {
				defer followers.Done()
				frng := rand.New(rand.NewPCG(cfg.Seed, uint64(100+w)))
				for {
					select {
					case <-followDone:
						return
					default:
					}
					status, applied := followUp(ctx, psrv.Client(), psrv.URL, known[frng.IntN(len(known))])
					mu.Lock()
					rep.FollowUps++
					rep.FollowUpAnswers[status]++
					if applied {
						rep.FollowUpsApplied++
					}
					mu.Unlock()
				}
			}()
		}
	}
	pending.Wait()
	close(followDone)
	followers.Wait()
	for _, r := range s.Sim.Requests() {
		if strings.HasPrefix(r.Path, queryPath) && len(r.Faults) > 0 {
			rep.QueryFaults++
		}
	}
	close(done)
	close(progressDone)
	rep.Elapsed = time.Since(start)
	rep.Acked, rep.Unacked = int(acked), int(given)
	rep.Throttled, rep.LostAnswers, rep.Crashes = faults.Throttled.Load(), faults.Lost.Load(), crashes.Load()

	// Drain anything a failed publish left in the outbox, then check.
	if _, err := domainevent.Drain(ctx, clean, pub, 1000); err != nil {
		return nil, err
	}
	if err := check(ctx, clean, truths, pub, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// simRecorder records storm payments at the stack's simulator.
func simRecorder(s *stack.Stack) recordPayment {
	return func(ctx context.Context, no string, total int64, promo map[string]any) (string, string, error) {
		t := wxpaysim.PaidTransaction{MchID: s.Merchant.MchID, OutTradeNo: no, TradeType: "JSAPI", OpenID: "o" + no, Total: total}
		if promo != nil {
			amount, _ := promo["amount"].(int64)
			t.Promotions = []wxpaysim.Promotion{{CouponID: promo["coupon_id"].(string), Type: promo["type"].(string), Amount: amount,
				StockID: promo["stock_id"].(string), MerchantContribute: amount}}
		}
		res, err := s.Sim.RecordPaidTransaction(ctx, t)
		if err != nil {
			return "", "", fmt.Errorf("soak: record %s at the simulator: %w", no, err)
		}
		return res.TransactionID, ledger.WechatTime(s.Sim.Now()), nil
	}
}

// followUp asks the payments function for an order with ?live=true and
// returns the answer's status and whether the query recorded the payment.
func followUp(ctx context.Context, c *http.Client, base, no string) (int, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/payments/orders/"+no+"?live=true", nil)
	if err != nil {
		return 0, false
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var v struct {
		Live *struct {
			Applied bool `json:"applied"`
		} `json:"live"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v.Live != nil && v.Live.Applied
}

func deliver(ctx context.Context, c *http.Client, base string, s *stack.Stack, d *delivery) int {
	h, err := wxsign.SignResponse(s.Platform.Key, s.Platform.PublicKeyID, time.Now().Unix(), testkeys.RandomString(32), d.body)
	if err != nil {
		return 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/notify/"+d.n.channel, bytes.NewReader(d.body))
	if err != nil {
		return 0
	}
	req.Header.Set(wxsign.HeaderTimestamp, h.Timestamp)
	req.Header.Set(wxsign.HeaderNonce, h.Nonce)
	req.Header.Set(wxsign.HeaderSignature, h.Signature)
	req.Header.Set(wxsign.HeaderSerial, h.Serial)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func envelope(n *note, apiV3Key string) ([]byte, error) {
	res, err := wxsign.Seal([]byte(apiV3Key), testkeys.RandomString(12), n.originalType, n.originalType, n.plain)
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"id": n.id, "create_time": ledger.WechatTime(time.Now()), "resource_type": "encrypt-resource",
		"event_type": n.eventType, "summary": "soak", "resource": res})
}
