// Package hostile is the bad-input suite of the reliability issue: a table
// of hostile inputs (huge bodies, deep JSON, wrong types, negative and
// overflowing amounts, unicode edge cases such as the 4-byte emoji WeChat
// Pay rejects, path traversal in ids, SQL/NoSQL/JSON injection strings)
// thrown at every route of every function, and the fuzz targets of every
// function's request decoding.
//
// The route list is taken from the handlers' Routes(), so a new route is
// covered as soon as it exists. Each hostile input must be answered with a
// 4xx JSON {code, message} — or, where the input is actually harmless (a GET
// ignores its body, an optional body may be JSON null), with the route's
// documented answer, which the table names — with no panic, no change to
// the DynamoDB table and no WeChat Pay request.
//
// The World holds the system the inputs hit: the whole stack (DynamoDB
// Local, the WeChat Pay simulator) with fixtures — orders, Pay Score
// authorizations, coupons, activities — so that routes addressing an
// existing resource get past "not found" and their request decoding and
// validation are what the input meets.
package hostile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxpay-serverless/wxpay-serverless/internal/frontdoor"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// Functions lists the five functions, in the order of frontdoor.AllFunctions.
func Functions() []string { return []string{"notify", "payscore", "coupons", "payments", "billing"} }

// World is a running stack with fixtures for some functions.
type World struct {
	Stack   *stack.Stack
	Table   string
	targets map[string]frontdoor.Target
	door    *frontdoor.Door
	token   string
	// F are the fixtures' identifiers.
	F Fixtures
}

// Fixtures are the resources the route specs address.
type Fixtures struct {
	// payments: an unpaid order, a paid one with a 1 fen refund.
	UnpaidOrder, PaidOrder, Refund string
	// payscore: an authorized user (orders), a user whose authorization
	// (through Code) was revoked (cached reads), an active code and an
	// active user (terminations); orders in DOING (complete, cancel) and
	// completed, waiting for payment (modify, sync).
	AuthorizedUser, RevokedUser, Code, ActiveCode, TerminateUser string
	DoingOrders, PayingOrders                                    [2]string
	GetOrder                                                     string
	// coupons: a WECHATPAY_MODE stock with a user's coupons (three unused,
	// one used, one associated with a trade), a MERCHANT_UPLOAD stock with
	// two uploaded codes, and two pay-gift activities.
	CouponUser, CouponStock, UploadStock, UploadedCode, DeletableCode string
	UnusedCoupons                                                     [3]string // use, associate, deactivate
	UsedCoupon, AssociatedCoupon, AssociatedTrade                     string
	Activity, TerminateActivity                                       string
	// billing: yesterday, a valid bill date.
	BillDate string
}

// NewWorld starts a stack on the table and prepares the fixtures of the
// named functions (all when none are named).
func NewWorld(ctx context.Context, endpoint, table string, functions ...string) (*World, error) {
	s, err := stack.Start(ctx, stack.Options{DynamoDBEndpoint: endpoint, Table: table, TimeScale: 0.001})
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	w := &World{Stack: s, Table: table, targets: map[string]frontdoor.Target{}, door: frontdoor.New()}
	for _, t := range s.Targets {
		w.targets[t.Function] = t
	}
	if w.token, err = s.Token(2 * time.Hour); err != nil {
		s.Close()
		return nil, fmt.Errorf("hostile: %w", err)
	}
	if len(functions) == 0 {
		functions = Functions()
	}
	for _, fn := range functions {
		var err error
		switch fn {
		case "payments":
			err = w.paymentsFixtures(ctx)
		case "payscore":
			err = w.payscoreFixtures(ctx)
		case "coupons":
			err = w.couponsFixtures(ctx)
		case "billing":
			w.F.BillDate = ledger.Day(time.Now().Add(-24 * time.Hour))
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := w.settle(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return w, nil
}

// Close stops the stack.
func (w *World) Close() { w.Stack.Close() }

// Routes are a function's routes, from its handler.
func (w *World) Routes(function string) []apigw.Route { return w.targets[function].Routes }

// settle waits until every notification the simulator queued has been
// delivered, so nothing writes to the table behind a case's back.
func (w *World) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for _, d := range w.Stack.Sim.Deliveries() {
		if seen[d.NotificationID] {
			continue
		}
		seen[d.NotificationID] = true
		if err := w.Stack.Sim.WaitDelivered(ctx, d.NotificationID); err != nil {
			return fmt.Errorf("hostile: settle: %w", err)
		}
	}
	return nil
}

// call sends a request through the stack's front door with the JWT and
// requires the status; the JSON answer is returned.
func (w *World) call(ctx context.Context, method, path string, body any, want int) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.Stack.FrontURL+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	if resp.StatusCode != want {
		return out, fmt.Errorf("hostile: fixture %s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	return out, nil
}

func (w *World) paymentsFixtures(ctx context.Context) error {
	f := &w.F
	f.UnpaidOrder, f.PaidOrder, f.Refund = "HOSTILEPAY01", "HOSTILEPAY02", "HOSTILEREF01"
	for _, no := range []string{f.UnpaidOrder, f.PaidOrder} {
		if _, err := w.call(ctx, http.MethodPost, "/payments/orders", map[string]any{"trade_type": "NATIVE", "out_trade_no": no,
			"description": "恶意输入测试", "amount": map[string]any{"total": 1000}}, http.StatusOK); err != nil {
			return err
		}
	}
	res, err := w.Stack.Sim.PayOrder(ctx, wxpaysim.Payment{MchID: w.Stack.Merchant.MchID, OutTradeNo: f.PaidOrder})
	if err != nil {
		return fmt.Errorf("hostile: pay %s: %w", f.PaidOrder, err)
	}
	if err := w.Stack.Sim.WaitDelivered(ctx, res.NotificationID); err != nil {
		return fmt.Errorf("hostile: payment notification: %w", err)
	}
	// A refund already exists, so a refund amount that overflows when added
	// to it is a case of its own.
	_, err = w.call(ctx, http.MethodPost, "/payments/refunds", map[string]any{"out_trade_no": f.PaidOrder, "out_refund_no": f.Refund,
		"refund": 1, "reason": "恶意输入测试"}, http.StatusOK)
	return err
}

func (w *World) payscoreFixtures(ctx context.Context) error {
	f, m, sim := &w.F, w.Stack.Merchant, w.Stack.Sim
	f.AuthorizedUser, f.RevokedUser, f.Code = "oHostileAuthorized", "oHostileRevoked", "HOSTILECODE1"
	f.ActiveCode, f.TerminateUser = "HOSTILECODE2", "oHostileTerminate"
	const codedUser = "oHostileCoded"
	if err := sim.SetPayScoreService(m.MchID, wxpaysim.PayScoreService{ServiceID: m.ServiceID, AppIDs: []string{m.AppID},
		NotifyURL: w.Stack.FrontURL + "/notify/payscore", MaxOpenOrders: 1000}); err != nil {
		return fmt.Errorf("hostile: %w", err)
	}
	// The revoked user opened the service through the pre-authorized code,
	// then closed it: its user row and the code's row are cached
	// UNAVAILABLE, so reads answer from the ledger and terminations are a
	// local 409.
	for code, openid := range map[string]string{f.Code: f.RevokedUser, f.ActiveCode: codedUser} {
		if _, err := w.call(ctx, http.MethodPost, "/payscore/authorizations", map[string]any{"authorization_code": code, "openid": openid},
			http.StatusCreated); err != nil {
			return err
		}
	}
	for _, u := range []wxpaysim.PayScoreUser{{MchID: m.MchID, OpenID: f.AuthorizedUser}, {MchID: m.MchID, OpenID: f.TerminateUser},
		{MchID: m.MchID, OpenID: f.RevokedUser, AuthorizationCode: f.Code}, {MchID: m.MchID, OpenID: codedUser, AuthorizationCode: f.ActiveCode}} {
		res, err := sim.AuthorizePayScore(ctx, u)
		if err != nil {
			return fmt.Errorf("hostile: authorize %s: %w", u.OpenID, err)
		}
		if err := sim.WaitDelivered(ctx, res.NotificationID); err != nil {
			return fmt.Errorf("hostile: authorization notification: %w", err)
		}
	}
	res, err := sim.RevokePayScore(ctx, wxpaysim.PayScoreUser{MchID: m.MchID, OpenID: f.RevokedUser})
	if err != nil {
		return fmt.Errorf("hostile: revoke: %w", err)
	}
	if err := sim.WaitDelivered(ctx, res.NotificationID); err != nil {
		return fmt.Errorf("hostile: revocation notification: %w", err)
	}
	now := time.Now()
	for i := range f.DoingOrders {
		f.DoingOrders[i] = fmt.Sprintf("HOSTILEPSDOING%d", i+1)
		f.PayingOrders[i] = fmt.Sprintf("HOSTILEPSPAYING%d", i+1)
	}
	for _, no := range append(f.DoingOrders[:], f.PayingOrders[:]...) {
		if _, err := w.call(ctx, http.MethodPost, "/payscore/orders", PayScoreCreate(no, f.AuthorizedUser, now), http.StatusCreated); err != nil {
			return err
		}
	}
	for _, no := range f.PayingOrders {
		if _, err := w.call(ctx, http.MethodPost, "/payscore/orders/"+no+"/complete", PayScoreComplete(now), http.StatusOK); err != nil {
			return err
		}
	}
	f.GetOrder = f.DoingOrders[0]
	return nil
}

// PayScoreCreate is a valid create body.
func PayScoreCreate(no, openid string, now time.Time) map[string]any {
	return map[string]any{"out_order_no": no, "openid": openid, "service_introduction": "充电宝租借",
		"time_range": map[string]any{"start_time": ledger.PayScoreTime(now.Add(-time.Hour))}, "location": map[string]any{"start_location": "深圳腾大"},
		"risk_fund": map[string]any{"name": "ESTIMATE_ORDER_COST", "amount": 9900, "description": "充电宝押金"}}
}

// PayScoreComplete is a valid complete body.
func PayScoreComplete(now time.Time) map[string]any {
	return map[string]any{"post_payments": []any{map[string]any{"name": "租借费", "amount": 400, "description": "每小时1元", "count": 4}},
		"total_amount": 400, "time_range": map[string]any{"end_time": ledger.PayScoreTime(now)}}
}

// CouponStock is a valid create-stock body.
func CouponStock(mode, appid string, now time.Time) map[string]any {
	return map[string]any{
		"stock_name": "恶意输入测试券", "comment": "hostile", "goods_name": "全场可用", "stock_type": "NORMAL", "coupon_code_mode": mode,
		"coupon_use_rule": map[string]any{
			"coupon_available_time": map[string]any{"available_begin_time": ledger.WechatTime(now.Add(-time.Hour)),
				"available_end_time": ledger.WechatTime(now.Add(30 * 24 * time.Hour))},
			"fixed_normal_coupon": map[string]any{"discount_amount": 100, "transaction_minimum": 200},
			"use_method":          "OFF_LINE",
		},
		"stock_send_rule": map[string]any{"max_coupons": 100, "max_coupons_per_user": 10},
		"notify_config":   map[string]any{"notify_appid": appid},
	}
}

// PayGiftActivity is a valid create-activity body over stock.
func PayGiftActivity(stock, mchid string, now time.Time) map[string]any {
	return map[string]any{
		"activity_base_info": map[string]any{"activity_name": "满100送券", "activity_second_title": "下单即送",
			"merchant_logo_url": "https://wxpaylogo.qpic.cn/logo.png", "begin_time": ledger.WechatTime(now),
			"end_time": ledger.WechatTime(now.Add(7 * 24 * time.Hour)), "delivery_purpose": "OFF_LINE_PAY"},
		"award_send_rule": map[string]any{"transaction_amount_minimum": 10000, "send_content": "SINGLE_COUPON",
			"award_list":       []any{map[string]any{"stock_id": stock, "original_image_url": "https://wxpaylogo.qpic.cn/award.png"}},
			"merchant_id_list": []any{mchid}},
	}
}

func (w *World) couponsFixtures(ctx context.Context) error {
	f, m, sim := &w.F, w.Stack.Merchant, w.Stack.Sim
	now := time.Now()
	if _, err := w.call(ctx, http.MethodPut, "/coupons/callback", nil, http.StatusOK); err != nil {
		return err
	}
	st, err := w.call(ctx, http.MethodPost, "/coupons/stocks", CouponStock("WECHATPAY_MODE", m.AppID, now), http.StatusOK)
	if err != nil {
		return err
	}
	f.CouponStock, _ = st["stock_id"].(string)
	up, err := w.call(ctx, http.MethodPost, "/coupons/stocks", CouponStock("MERCHANT_UPLOAD", m.AppID, now), http.StatusOK)
	if err != nil {
		return err
	}
	f.UploadStock, _ = up["stock_id"].(string)
	f.UploadedCode, f.DeletableCode = "HOSTILECODE01", "HOSTILECODE02"
	if _, err := w.call(ctx, http.MethodPost, "/coupons/stocks/"+f.UploadStock+"/codes",
		map[string]any{"coupon_code_list": []string{f.UploadedCode, f.DeletableCode}}, http.StatusOK); err != nil {
		return err
	}
	if err := sim.SetAPIv2Key(m.MchID, m.APIv2Key); err != nil {
		return fmt.Errorf("hostile: %w", err)
	}
	f.CouponUser = "oHostileCouponUser"
	params := make([]wxpaysim.PluginCouponParam, 5)
	for i := range params {
		params[i] = wxpaysim.PluginCouponParam{StockID: f.CouponStock, OutRequestNo: fmt.Sprintf("HOSTILECLAIM%02d", i)}
	}
	res, err := sim.ClaimCoupons(ctx, wxpaysim.CouponClaim{OpenID: f.CouponUser, AppID: m.AppID, SendCouponMerchant: m.MchID,
		SendCouponParams: params, Sign: wxpaysim.PluginSign(m.APIv2Key, m.MchID, params)})
	if err != nil {
		return fmt.Errorf("hostile: claim: %w", err)
	}
	var codes []string
	for _, c := range res.Results {
		if c.Code != "SUCCESS" {
			return fmt.Errorf("hostile: claim: %s %s", c.Code, c.Message)
		}
		codes = append(codes, c.CouponCode)
	}
	for _, id := range res.NotificationIDs {
		if err := sim.WaitDelivered(ctx, id); err != nil {
			return fmt.Errorf("hostile: COUPON.SEND: %w", err)
		}
	}
	copy(f.UnusedCoupons[:], codes[:3])
	f.UsedCoupon, f.AssociatedCoupon, f.AssociatedTrade = codes[3], codes[4], "HOSTILETRADE01"
	if _, err := w.call(ctx, http.MethodPost, "/coupons/use", map[string]any{"stock_id": f.CouponStock, "coupon_code": f.UsedCoupon},
		http.StatusOK); err != nil {
		return err
	}
	if _, err := w.call(ctx, http.MethodPost, "/coupons/associate", map[string]any{"stock_id": f.CouponStock, "coupon_code": f.AssociatedCoupon,
		"out_trade_no": f.AssociatedTrade}, http.StatusOK); err != nil {
		return err
	}
	for i, dst := range []*string{&f.Activity, &f.TerminateActivity} {
		body := PayGiftActivity(f.CouponStock, m.MchID, now)
		body["activity_base_info"].(map[string]any)["activity_second_title"] = fmt.Sprintf("第%d个", i+1)
		a, err := w.call(ctx, http.MethodPost, "/paygift/activities", body, http.StatusOK)
		if err != nil {
			return err
		}
		*dst, _ = a["activity_id"].(string)
	}
	return nil
}

// Answer is one invocation's outcome.
type Answer struct {
	Status  int
	Headers map[string]string
	Body    string
	Err     error // a Go error from the handler (API Gateway would answer 500)
	Panic   any   // the handler panicked
}

// Request is one input to a route, as API Gateway would deliver it.
type Request struct {
	Route  apigw.Route
	Params map[string]string // path parameters, verbatim (API Gateway decodes them)
	Query  string            // raw query string
	Body   []byte
	// Base64 marks the body as base64 (API Gateway does so for binary
	// bodies); RawBase64 sends Body as the event body verbatim with the flag
	// set, for bodies that are not valid base64.
	Base64, RawBase64 bool
	Headers           map[string]string
}

// Event builds the API Gateway v2 event of r the way the front door does
// for a real HTTP request, then sets the path parameters verbatim.
func (w *World) Event(r Request) events.APIGatewayV2HTTPRequest {
	path := r.Route.Path
	for name, v := range r.Params {
		path = strings.ReplaceAll(path, "{"+name+"}", v)
	}
	hreq := httptest.NewRequest(r.Route.Method, "/", nil)
	hreq.URL.Path, hreq.URL.RawQuery = path, r.Query
	hreq.Host = "api.example.com"
	hreq.Header.Set("Content-Type", "application/json")
	for k, v := range r.Headers {
		hreq.Header.Set(k, v)
	}
	e := w.door.Event(hreq, r.Route, r.Params, r.Body)
	e.RawPath, e.RequestContext.HTTP.Path = path, path
	e.PathParameters = nil
	if len(r.Params) > 0 {
		e.PathParameters = r.Params
	}
	switch {
	case r.RawBase64:
		e.Body, e.IsBase64Encoded = string(r.Body), true
	case r.Base64:
		e.Body, e.IsBase64Encoded = base64.StdEncoding.EncodeToString(r.Body), true
	}
	return e
}

// Invoke calls the function's handler in-process with r, recovering a
// panic into the Answer.
func (w *World) Invoke(ctx context.Context, function string, r Request) (a Answer) {
	t, ok := w.targets[function]
	if !ok {
		return Answer{Err: fmt.Errorf("hostile: no function %q", function)}
	}
	e := w.Event(r)
	defer func() {
		if p := recover(); p != nil {
			a = Answer{Panic: p}
		}
	}()
	resp, err := t.Handle(ctx, e)
	if err != nil {
		return Answer{Err: err}
	}
	body := resp.Body
	if resp.IsBase64Encoded {
		if b, derr := base64.StdEncoding.DecodeString(body); derr == nil {
			body = string(b)
		}
	}
	return Answer{Status: resp.StatusCode, Headers: resp.Headers, Body: body}
}

// Send delivers r over HTTP through the stack's front door (the API Gateway
// stand-in, JWT checked) instead of invoking the handler: path parameters
// are percent-escaped into the URL, a Base64 body is sent as its raw bytes
// (the front door base64-encodes non-UTF-8 bodies itself). RawBase64 bodies
// cannot be expressed over HTTP.
func (w *World) Send(ctx context.Context, r Request) (Answer, error) {
	if r.RawBase64 {
		return Answer{}, errors.New("hostile: a raw base64 event body has no HTTP form")
	}
	path := r.Route.Path
	for name, v := range r.Params {
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
	}
	u := w.Stack.FrontURL + path
	if r.Query != "" {
		u += "?" + r.Query
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Route.Method, u, body)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+w.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	h := map[string]string{}
	for k := range resp.Header {
		h[strings.ToLower(k)] = resp.Header.Get(k)
	}
	return Answer{Status: resp.StatusCode, Headers: h, Body: string(raw)}, nil
}

// Snapshot is the whole table and the simulator's request count.
type Snapshot struct {
	Items       int
	Digest      string
	SimRequests int
}

// Snapshot reads every item of the table (consistent scan) into a digest.
func (w *World) Snapshot(ctx context.Context) (Snapshot, error) {
	var lines []string
	var start map[string]types.AttributeValue
	for {
		out, err := w.Stack.DB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(w.Table), ConsistentRead: aws.Bool(true), ExclusiveStartKey: start})
		if err != nil {
			return Snapshot{}, fmt.Errorf("hostile: scan: %w", err)
		}
		for _, item := range out.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(item, &m); err != nil {
				return Snapshot{}, fmt.Errorf("hostile: scan: %w", err)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return Snapshot{}, fmt.Errorf("hostile: scan: %w", err)
			}
			lines = append(lines, string(b))
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return Snapshot{Items: len(lines), Digest: hex.EncodeToString(sum[:]), SimRequests: len(w.Stack.Sim.Requests())}, nil
}

// SimRequestsSince describes the simulator requests after the first n.
func (w *World) SimRequestsSince(n int) []string {
	var out []string
	for _, r := range w.Stack.Sim.Requests()[n:] {
		p := r.Path
		if len(p) > 120 {
			p = p[:120] + "…"
		}
		out = append(out, fmt.Sprintf("%s %s -> %d %s", r.Method, p, r.Status, r.Code))
	}
	return out
}

// CheckErrorBody requires a JSON {code, message} body with both set, the
// JSON content type, and nothing else in the object.
func CheckErrorBody(a Answer) error {
	if ct := apigw.HeaderValue(a.Headers, "content-type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("content-type %q, want application/json", ct)
	}
	var e apigw.ErrorBody
	dec := json.NewDecoder(strings.NewReader(a.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return fmt.Errorf("body is not {code, message}: %v", err)
	}
	if e.Code == "" || e.Message == "" {
		return errors.New("code or message is empty")
	}
	return nil
}
