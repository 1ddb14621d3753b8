package wxpaysim

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Pay Score (微信支付分) in no-confirm mode, wechatpay-apiv3.md section 2:
// pre-authorization and authorization records (by code and by openid),
// service orders with the state machine of 2.4, the user's side (authorize,
// revoke, WeChat's deduction after complete, which may fail and be retried)
// and the PAYSCORE.* notifications.
//
// Error answers reproduce the FAQ of the official no-confirm guide:
//   - 403 NO_AUTH 商户暂无权限使用此服务: the service_id is not the merchant's,
//     need_user_confirm does not match the service's permission, or the user
//     has not authorized the service;
//   - 400 PARAM_ERROR 订单风险金额名称不符合要求: risk_fund.name outside the
//     service's mode (先享 ESTIMATE_ORDER_COST vs 先免 DEPOSIT/ADVANCE/CASH_DEPOSIT);
//   - 400 INVALID_REQUEST 综合评估不通过: risk control rejected the order (a
//     switchable fault: SetPayScoreRiskRejection);
//   - 400 PARAM_ERROR mch_id和AppID未绑定: the appid is not bound to the
//     merchant or not configured on the service;
//   - 400 INVALID_ORDER_STATE / ORDER_DONE / ORDER_CANCELED for calls the
//     order's state does not allow, 404 ORDER_NOT_EXIST for unknown orders.

// PayScoreMode is the sub-mode of a Pay Score service (wechatpay-apiv3.md 2.3).
type PayScoreMode string

// Pay Score modes.
const (
	// PayScoreEnjoyFirst is 先享: risk_fund.name ESTIMATE_ORDER_COST.
	PayScoreEnjoyFirst PayScoreMode = "enjoy_first"
	// PayScoreDepositFree is 先免: DEPOSIT, ADVANCE or CASH_DEPOSIT.
	PayScoreDepositFree PayScoreMode = "deposit_free"
)

// DefaultPayScoreRiskCap is the risk cap (风险金额上限, fen) of a service
// that was not configured: 500.00 CNY, the payscore handler's default too.
const DefaultPayScoreRiskCap int64 = 50000

// DefaultPayScoreMaxOpenOrders is how many unfinished orders a user may hold
// per service before create answers 存在未完结订单 (the official guide cites
// "more than 3 orders in progress" as a risk-control rejection).
const DefaultPayScoreMaxOpenOrders = 3

// PayScoreService configures one Pay Score service_id of a merchant. Zero
// fields mean: mode enjoy_first, DefaultPayScoreRiskCap, the no-confirm
// permission, every appid of the merchant, the merchant's notify_url,
// DefaultPayScoreMaxOpenOrders.
type PayScoreService struct {
	ServiceID string       `json:"service_id"`
	Mode      PayScoreMode `json:"mode,omitempty"`
	RiskCap   int64        `json:"risk_cap,omitempty"`
	// NeedConfirm gives the service the need-confirm permission instead of
	// no-confirm (need_user_confirm must then be true).
	NeedConfirm bool `json:"need_confirm,omitempty"`
	// AppIDs are the appids bound to this service; others get
	// "mch_id和AppID未绑定".
	AppIDs []string `json:"appids,omitempty"`
	// NotifyURL is the service_notify_url: where authorization callbacks
	// go when the authorization did not come from a pre-authorization with
	// its own notify_url.
	NotifyURL     string `json:"notify_url,omitempty"`
	MaxOpenOrders int    `json:"max_open_orders,omitempty"`
}

func (c PayScoreService) withDefaults() PayScoreService {
	if c.Mode == "" {
		c.Mode = PayScoreEnjoyFirst
	}
	if c.RiskCap == 0 {
		c.RiskCap = DefaultPayScoreRiskCap
	}
	if c.MaxOpenOrders == 0 {
		c.MaxOpenOrders = DefaultPayScoreMaxOpenOrders
	}
	return c
}

func (c PayScoreService) riskFundNames() []string {
	if c.Mode == PayScoreDepositFree {
		return []string{"DEPOSIT", "ADVANCE", "CASH_DEPOSIT"}
	}
	return []string{"ESTIMATE_ORDER_COST"}
}

// Pay Score states (wechatpay-apiv3.md 2.4).
const (
	psCreated     = "CREATED"
	psDoing       = "DOING"
	psDone        = "DONE"
	psRevoked     = "REVOKED"
	psUserConfirm = "USER_CONFIRM"
	psMchComplete = "MCH_COMPLETE"
	psUserPaying  = "USER_PAYING"
	psUserPaid    = "USER_PAID"
	psAvailable   = "AVAILABLE"
	psUnavailable = "UNAVAILABLE"
	psUnbindUser  = "UNBINDUSER"
)

// payscoreState is the Pay Score world of one simulator. It is created once
// by payscoreRoutes (New calls it once) and reached from the admin routes
// and Go API through the route table (see (*Sim).payscore): the product files
// have no other per-Sim home. Service configs survive Reset like merchants;
// authorizations, codes, orders and risk faults are dropped when the Sim's
// generation changes.
type payscoreState struct {
	mu       sync.Mutex
	gen      int
	services map[string]PayScoreService // mchid/service_id
	auths    map[string]*psAuth         // mchid/service_id/openid
	codes    map[string]*psCode         // mchid/authorization_code
	orders   map[string]*psOrder        // mchid/out_order_no
	risk     []*psRisk
}

type psAuth struct {
	appID, serviceID, openID, code string
	state                          string // AVAILABLE or UNAVAILABLE
	successAt, cancelAt            time.Time
}

type psCode struct {
	code, serviceID, appID, notifyURL, token string
	openID                                   string // once a user authorized with it
	state                                    string // UNBINDUSER, AVAILABLE, UNAVAILABLE
	successAt, cancelAt                      time.Time
}

type psRisk struct {
	mchID, openID string
	remaining     int // 0: until cleared
}

// psOrder is one service order.
type psOrder struct {
	mchID      string
	digest     string
	req        psCreateRequest
	orderID    string
	pkg        string
	state      string
	desc       string
	collection string
	total      int64
	payments   []psItem
	discounts  []psItem
	timeRange  psTimeRange
	location   *psLocation
	paid       int64
	details    []psDetail
	attempts   int // failed deduction attempts
}

type psItem struct {
	Name        string `json:"name"`
	Amount      int64  `json:"amount"`
	Description string `json:"description,omitempty"`
	Count       int64  `json:"count,omitempty"`
}

type psRiskFund struct {
	Name        string `json:"name"`
	Amount      int64  `json:"amount"`
	Description string `json:"description,omitempty"`
}

type psTimeRange struct {
	StartTime       string `json:"start_time,omitempty"`
	StartTimeRemark string `json:"start_time_remark,omitempty"`
	EndTime         string `json:"end_time,omitempty"`
	EndTimeRemark   string `json:"end_time_remark,omitempty"`
}

type psLocation struct {
	StartLocation string `json:"start_location,omitempty"`
	EndLocation   string `json:"end_location,omitempty"`
}

type psDevice struct {
	StartDeviceID string `json:"start_device_id,omitempty"`
	EndDeviceID   string `json:"end_device_id,omitempty"`
	MaterielNo    string `json:"materiel_no,omitempty"`
}

type psCreateRequest struct {
	OutOrderNo          string       `json:"out_order_no"`
	AppID               string       `json:"appid"`
	ServiceID           string       `json:"service_id"`
	ServiceIntroduction string       `json:"service_introduction"`
	PostPayments        []psItem     `json:"post_payments"`
	PostDiscounts       []psItem     `json:"post_discounts"`
	TimeRange           *psTimeRange `json:"time_range"`
	Location            *psLocation  `json:"location"`
	RiskFund            *psRiskFund  `json:"risk_fund"`
	Attach              string       `json:"attach"`
	NotifyURL           string       `json:"notify_url"`
	OpenID              string       `json:"openid"`
	NeedUserConfirm     *bool        `json:"need_user_confirm"`
	Device              *psDevice    `json:"device"`
}

type psDetail struct {
	Seq             int64           `json:"seq"`
	Amount          int64           `json:"amount"`
	PaidType        string          `json:"paid_type"`
	PaidTime        string          `json:"paid_time"`
	TransactionID   string          `json:"transaction_id,omitempty"`
	PromotionDetail []promotionJSON `json:"promotion_detail,omitempty"`
}

type psCollection struct {
	State        string     `json:"state"`
	TotalAmount  int64      `json:"total_amount"`
	PayingAmount int64      `json:"paying_amount"`
	PaidAmount   int64      `json:"paid_amount"`
	Details      []psDetail `json:"details,omitempty"`
}

// psOrderJSON is a service order as WeChat Pay renders it (O1/O2).
type psOrderJSON struct {
	AppID               string        `json:"appid"`
	MchID               string        `json:"mchid"`
	OutOrderNo          string        `json:"out_order_no"`
	ServiceID           string        `json:"service_id"`
	ServiceIntroduction string        `json:"service_introduction"`
	State               string        `json:"state"`
	StateDescription    string        `json:"state_description,omitempty"`
	TotalAmount         *int64        `json:"total_amount,omitempty"`
	PostPayments        []psItem      `json:"post_payments,omitempty"`
	PostDiscounts       []psItem      `json:"post_discounts,omitempty"`
	RiskFund            psRiskFund    `json:"risk_fund"`
	TimeRange           psTimeRange   `json:"time_range"`
	Location            *psLocation   `json:"location,omitempty"`
	Attach              string        `json:"attach,omitempty"`
	NotifyURL           string        `json:"notify_url"`
	OrderID             string        `json:"order_id"`
	Package             string        `json:"package,omitempty"`
	OpenID              string        `json:"openid,omitempty"`
	NeedCollection      *bool         `json:"need_collection,omitempty"`
	Collection          *psCollection `json:"collection,omitempty"`
}

// view renders the order; withCollection adds what the query API shows.
// payscoreState.mu must be held.
func (o *psOrder) view(withCollection bool) psOrderJSON {
	v := psOrderJSON{AppID: o.req.AppID, MchID: o.mchID, OutOrderNo: o.req.OutOrderNo, ServiceID: o.req.ServiceID,
		ServiceIntroduction: o.req.ServiceIntroduction, State: o.state, PostPayments: o.payments, PostDiscounts: o.discounts,
		TimeRange: o.timeRange, Location: o.location, Attach: o.req.Attach, NotifyURL: o.req.NotifyURL,
		OrderID: o.orderID, Package: o.pkg, OpenID: o.req.OpenID}
	if o.req.RiskFund != nil {
		v.RiskFund = *o.req.RiskFund
	}
	if o.state == psDoing {
		v.StateDescription = o.desc
	}
	if o.collection != "" {
		total, need := o.total, true
		v.TotalAmount, v.NeedCollection = &total, &need
		if withCollection {
			c := &psCollection{State: o.collection, TotalAmount: o.total, PaidAmount: o.paid, Details: o.details}
			if o.collection == psUserPaying {
				c.PayingAmount = o.total
			}
			v.Collection = c
		}
	}
	return v
}

func (s *Sim) generation() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// lock locks the state, first dropping the business state of an older
// generation (Reset). It never holds Sim.mu while taking ps.mu.
func (ps *payscoreState) lock(s *Sim) {
	gen := s.generation()
	ps.mu.Lock()
	if ps.gen != gen {
		ps.gen = gen
		ps.auths = make(map[string]*psAuth)
		ps.codes = make(map[string]*psCode)
		ps.orders = make(map[string]*psOrder)
		ps.risk = nil
	}
}

// service returns the config of serviceID for the merchant and whether the
// merchant owns it. ps.mu must be held.
func (ps *payscoreState) service(cfg MerchantConfig, serviceID string) (PayScoreService, bool) {
	if c, ok := ps.services[cfg.MchID+"/"+serviceID]; ok {
		return c.withDefaults(), true
	}
	if serviceID != "" && slices.Contains(cfg.ServiceIDs, serviceID) {
		return PayScoreService{ServiceID: serviceID}.withDefaults(), true
	}
	return PayScoreService{}, false
}

// payscore returns the Pay Score state.
func (s *Sim) payscore() *payscoreState { return s.ps }

// payscoreRoutes are the /v3/ routes of Pay Score (/v3/payscore/...).
func (s *Sim) payscoreRoutes() []route {
	h := &payscoreAPI{s: s, ps: s.ps}
	return []route{
		{method: http.MethodPost, pattern: "/v3/payscore/permissions", handle: h.permissions},
		{method: http.MethodGet, pattern: "/v3/payscore/permissions/authorization-code/{authorization_code}", handle: h.queryByCode},
		{method: http.MethodPost, pattern: "/v3/payscore/permissions/authorization-code/{authorization_code}/terminate", handle: h.terminateByCode},
		{method: http.MethodGet, pattern: "/v3/payscore/permissions/openid/{openid}", handle: h.queryByOpenID},
		{method: http.MethodPost, pattern: "/v3/payscore/permissions/openid/{openid}/terminate", handle: h.terminateByOpenID},
		{method: http.MethodPost, pattern: "/v3/payscore/serviceorder", handle: h.create},
		{method: http.MethodGet, pattern: "/v3/payscore/serviceorder", handle: h.query},
		{method: http.MethodPost, pattern: "/v3/payscore/serviceorder/{out_order_no}/cancel", handle: h.cancel},
		{method: http.MethodPost, pattern: "/v3/payscore/serviceorder/{out_order_no}/modify", handle: h.modify},
		{method: http.MethodPost, pattern: "/v3/payscore/serviceorder/{out_order_no}/complete", handle: h.complete},
		{method: http.MethodPost, pattern: "/v3/payscore/serviceorder/{out_order_no}/sync", handle: h.sync},
	}
}

// payscoreAPI serves the /v3/payscore routes.
type payscoreAPI struct {
	s  *Sim
	ps *payscoreState
}

func psNoAuth(format string, args ...any) *apiError {
	return apiErr(http.StatusForbidden, "NO_AUTH", "商户暂无权限使用此服务 ("+format+")", args...)
}

func psAppIDNotBound(appID string) *apiError {
	return paramError("mch_id和AppID未绑定 (appid %s is not bound to the merchant or not configured on the service)", appID)
}

func psRequired(field, name string) *apiError {
	return paramError("输入源“%s”映射到值字段“%s”必填性规则校验失败，此字段为必填项", field, name)
}

func psTooLong(field string, max int, v string) *apiError {
	if n := utf8.RuneCountInString(v); n > max {
		return paramError("输入源“%s”字符串规则校验失败，字符数 %d，大于最大值 %d", field, n, max)
	}
	return nil
}

// checkServiceApp resolves the service and checks the appid binding.
// ps.mu must be held.
func (h *payscoreAPI) checkServiceApp(cfg MerchantConfig, serviceID, appID string) (PayScoreService, error) {
	if serviceID == "" {
		return PayScoreService{}, psRequired("/body/service_id", "服务ID")
	}
	svc, ok := h.ps.service(cfg, serviceID)
	if !ok {
		return svc, psNoAuth("service_id %s does not belong to merchant %s", serviceID, cfg.MchID)
	}
	if appID == "" {
		return svc, psRequired("/body/appid", "应用ID")
	}
	if !slices.Contains(cfg.AppIDs, appID) || (len(svc.AppIDs) > 0 && !slices.Contains(svc.AppIDs, appID)) {
		return svc, psAppIDNotBound(appID)
	}
	return svc, nil
}

func psValidTime(s string) bool {
	if len(s) != 14 {
		return false
	}
	_, err := time.ParseInLocation("20060102150405", s, time.FixedZone("CST", 8*3600))
	return err == nil
}

func psValidPaidTime(s string) bool {
	if len(s) == 8 {
		_, err := time.ParseInLocation("20060102", s, time.FixedZone("CST", 8*3600))
		return err == nil
	}
	return psValidTime(s)
}

func psValidCode(s string, max int, extra string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}

func psCheckItems(field string, items []psItem, max int, uniqueExempt string) error {
	if len(items) > max {
		return paramError("输入源“%s”数组长度 %d，大于最大值 %d", field, len(items), max)
	}
	seen := map[string]bool{}
	for i, it := range items {
		switch {
		case it.Name == "":
			return psRequired(field+"/"+strconv.Itoa(i)+"/name", "名称")
		case it.Amount < 0:
			return paramError("输入源“%s/%d/amount”数值规则校验失败，值 %d，小于最小值 0", field, i, it.Amount)
		case it.Count < 0 || it.Count > 100:
			return paramError("输入源“%s/%d/count”数值规则校验失败，应在1到100之间", field, i)
		case seen[it.Name] && it.Name != uniqueExempt:
			return paramError("输入源“%s”名称“%s”重复", field, it.Name)
		}
		if err := psTooLong(field+"/name", 20, it.Name); err != nil {
			return err
		}
		if err := psTooLong(field+"/description", 30, it.Description); err != nil {
			return err
		}
		seen[it.Name] = true
	}
	return nil
}

func psSumItems(payments, discounts []psItem) int64 {
	var t int64
	for _, p := range payments {
		t += p.Amount
	}
	for _, d := range discounts {
		t -= d.Amount
	}
	return t
}

func psCheckReason(reason string) error {
	if reason == "" {
		return psRequired("/body/reason", "原因")
	}
	if err := psTooLong("/body/reason", 50, reason); err != nil {
		return err
	}
	return nil
}

func psOrderNotExist() error {
	return apiErr(http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在")
}

// stateError is the answer to a call the order's state does not allow.
func psStateError(o *psOrder, call string) error {
	switch o.state {
	case psDone:
		return apiErr(http.StatusBadRequest, "ORDER_DONE", "订单已完成，不能%s (order is DONE)", call)
	case psRevoked:
		return apiErr(http.StatusBadRequest, "ORDER_CANCELED", "订单已取消，不能%s (order is REVOKED)", call)
	}
	st := o.state
	if o.state == psDoing {
		st += "/" + o.desc
		if o.collection != "" {
			st += ", collection " + o.collection
		}
	}
	return apiErr(http.StatusBadRequest, "INVALID_ORDER_STATE", "订单状态不正确，不能%s (order is %s)", call, st)
}

// ---------------------------------------------------------------- permissions

type psPermissionRequest struct {
	ServiceID         string `json:"service_id"`
	AppID             string `json:"appid"`
	AuthorizationCode string `json:"authorization_code"`
	NotifyURL         string `json:"notify_url"`
}

// permissions is 商户预授权: POST /v3/payscore/permissions.
func (h *payscoreAPI) permissions(_ context.Context, c *call) (reply, error) {
	var req psPermissionRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	cfg := c.m.config()
	if !psValidCode(req.AuthorizationCode, 32, "_-*") {
		return reply{}, paramError("输入源“/body/authorization_code”字符串规则校验失败，应为1-32位数字、大小写字母或_-*")
	}
	if req.NotifyURL != "" {
		if err := checkNotifyURL(req.NotifyURL); err != nil {
			return reply{}, err
		}
	}
	token, err := randomString(32, alnum)
	if err != nil {
		return reply{}, err
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	if _, err := h.checkServiceApp(cfg, req.ServiceID, req.AppID); err != nil {
		return reply{}, err
	}
	key := c.mchID + "/" + req.AuthorizationCode
	if old, ok := h.ps.codes[key]; ok {
		if old.state != psUnbindUser || old.serviceID != req.ServiceID || old.appID != req.AppID || old.notifyURL != req.NotifyURL {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "授权协议号已被使用 (authorization_code %s is already used)", req.AuthorizationCode)
		}
		// Pre-authorizing the same code again hands out a fresh token.
		old.token = "1" + token[1:]
		return reply{status: http.StatusOK, body: map[string]string{"apply_permissions_token": old.token}}, nil
	}
	code := &psCode{code: req.AuthorizationCode, serviceID: req.ServiceID, appID: req.AppID, notifyURL: req.NotifyURL,
		token: "1" + token[1:], state: psUnbindUser}
	h.ps.codes[key] = code
	return reply{status: http.StatusOK, body: map[string]string{"apply_permissions_token": code.token}}, nil
}

type psAuthorizationJSON struct {
	ServiceID                string `json:"service_id"`
	AppID                    string `json:"appid"`
	MchID                    string `json:"mchid"`
	OpenID                   string `json:"openid,omitempty"`
	AuthorizationCode        string `json:"authorization_code,omitempty"`
	AuthorizationState       string `json:"authorization_state"`
	NotifyURL                string `json:"notify_url,omitempty"`
	CancelAuthorizationTime  string `json:"cancel_authorization_time,omitempty"`
	AuthorizationSuccessTime string `json:"authorization_success_time,omitempty"`
}

func psTimeOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// queryByCode is GET /v3/payscore/permissions/authorization-code/{code}?service_id=.
func (h *payscoreAPI) queryByCode(_ context.Context, c *call) (reply, error) {
	serviceID := c.query.Get("service_id")
	if serviceID == "" {
		return reply{}, psRequired("/query/service_id", "服务ID")
	}
	cfg := c.m.config()
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	if _, ok := h.ps.service(cfg, serviceID); !ok {
		return reply{}, psNoAuth("service_id %s does not belong to merchant %s", serviceID, cfg.MchID)
	}
	code, ok := h.ps.codes[c.mchID+"/"+c.params["authorization_code"]]
	if !ok || code.serviceID != serviceID {
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "授权记录不存在")
	}
	return reply{status: http.StatusOK, body: psAuthorizationJSON{ServiceID: serviceID, AppID: code.appID, MchID: c.mchID,
		OpenID: code.openID, AuthorizationCode: code.code, AuthorizationState: code.state, NotifyURL: code.notifyURL,
		CancelAuthorizationTime: psTimeOrEmpty(code.cancelAt), AuthorizationSuccessTime: psTimeOrEmpty(code.successAt)}}, nil
}

// queryByOpenID is GET /v3/payscore/permissions/openid/{openid}?appid=&service_id=.
// A user who never authorized the service is UNAVAILABLE (the guide's
// "用户未授权服务").
func (h *payscoreAPI) queryByOpenID(_ context.Context, c *call) (reply, error) {
	serviceID, appID := c.query.Get("service_id"), c.query.Get("appid")
	switch {
	case serviceID == "":
		return reply{}, psRequired("/query/service_id", "服务ID")
	case appID == "":
		return reply{}, psRequired("/query/appid", "应用ID")
	}
	cfg := c.m.config()
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	if _, err := h.checkServiceApp(cfg, serviceID, appID); err != nil {
		return reply{}, err
	}
	openID := c.params["openid"]
	out := psAuthorizationJSON{ServiceID: serviceID, AppID: appID, MchID: c.mchID, OpenID: openID, AuthorizationState: psUnavailable}
	if a, ok := h.ps.auths[c.mchID+"/"+serviceID+"/"+openID]; ok {
		out.AuthorizationState, out.AuthorizationCode = a.state, a.code
		out.AuthorizationSuccessTime, out.CancelAuthorizationTime = psTimeOrEmpty(a.successAt), psTimeOrEmpty(a.cancelAt)
	}
	return reply{status: http.StatusOK, body: out}, nil
}

type psTerminateRequest struct {
	ServiceID string `json:"service_id"`
	AppID     string `json:"appid"`
	Reason    string `json:"reason"`
}

// terminateByCode is POST .../authorization-code/{code}/terminate (204).
func (h *payscoreAPI) terminateByCode(ctx context.Context, c *call) (reply, error) {
	var req psTerminateRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := psCheckReason(req.Reason); err != nil {
		return reply{}, err
	}
	cfg := c.m.config()
	h.ps.lock(h.s)
	if _, ok := h.ps.service(cfg, req.ServiceID); !ok {
		h.ps.mu.Unlock()
		return reply{}, psNoAuth("service_id %q does not belong to merchant %s", req.ServiceID, cfg.MchID)
	}
	code, ok := h.ps.codes[c.mchID+"/"+c.params["authorization_code"]]
	if !ok || code.serviceID != req.ServiceID {
		h.ps.mu.Unlock()
		return reply{}, apiErr(http.StatusNotFound, "RESOURCE_NOT_EXISTS", "授权记录不存在")
	}
	if code.state != psAvailable {
		h.ps.mu.Unlock()
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "用户未授权或已解除授权 (authorization is %s)", code.state)
	}
	a := h.ps.auths[c.mchID+"/"+req.ServiceID+"/"+code.openID]
	n := h.closeLocked(cfg, a, code)
	h.ps.mu.Unlock()
	return reply{status: http.StatusNoContent}, h.notifyAuth(ctx, n)
}

// terminateByOpenID is POST .../openid/{openid}/terminate (204).
func (h *payscoreAPI) terminateByOpenID(ctx context.Context, c *call) (reply, error) {
	var req psTerminateRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := psCheckReason(req.Reason); err != nil {
		return reply{}, err
	}
	cfg := c.m.config()
	h.ps.lock(h.s)
	if _, err := h.checkServiceApp(cfg, req.ServiceID, req.AppID); err != nil {
		h.ps.mu.Unlock()
		return reply{}, err
	}
	a, ok := h.ps.auths[c.mchID+"/"+req.ServiceID+"/"+c.params["openid"]]
	if !ok || a.state != psAvailable {
		h.ps.mu.Unlock()
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "用户未授权或已解除授权 (openid has no active authorization)")
	}
	n := h.closeLocked(cfg, a, h.ps.codes[c.mchID+"/"+a.code])
	h.ps.mu.Unlock()
	return reply{status: http.StatusNoContent}, h.notifyAuth(ctx, n)
}

// ---------------------------------------------------------------- orders

func (h *payscoreAPI) create(_ context.Context, c *call) (reply, error) {
	var req psCreateRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	cfg := c.m.config()
	digest, err := canonicalJSON(c.body)
	if err != nil {
		return reply{}, paramError("请求体格式错误 (%v)", err)
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	svc, err := h.checkServiceApp(cfg, req.ServiceID, req.AppID)
	if err != nil {
		return reply{}, err
	}
	if err := h.validateCreate(&req, svc); err != nil {
		return reply{}, err
	}
	key := c.mchID + "/" + req.OutOrderNo
	if o, ok := h.ps.orders[key]; ok {
		// Re-sending identical parameters succeeds; changed ones are
		// rejected (271316598, wechatpay-apiv3.md 2.2 O1 rules).
		if o.digest != digest {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "271316598 重入参数与首次请求不一致 (out_order_no %s was created with other parameters)", req.OutOrderNo)
		}
		return reply{status: http.StatusOK, body: o.view(false)}, nil
	}
	noConfirm := req.NeedUserConfirm != nil && !*req.NeedUserConfirm
	if noConfirm == svc.NeedConfirm {
		if svc.NeedConfirm {
			return reply{}, psNoAuth("service %s has the need-confirm permission: need_user_confirm must be true", svc.ServiceID)
		}
		return reply{}, psNoAuth("service %s has the no-confirm permission: need_user_confirm must be false", svc.ServiceID)
	}
	if noConfirm {
		if req.OpenID == "" {
			return reply{}, psRequired("/body/openid", "用户标识")
		}
		a, ok := h.ps.auths[c.mchID+"/"+svc.ServiceID+"/"+req.OpenID]
		if !ok || a.state != psAvailable {
			return reply{}, psNoAuth("user %s has not authorized service %s", req.OpenID, svc.ServiceID)
		}
		open := 0
		for _, o := range h.ps.orders {
			if o.mchID == c.mchID && o.req.ServiceID == svc.ServiceID && o.req.OpenID == req.OpenID && (o.state == psDoing || o.state == psCreated) {
				open++
			}
		}
		if open >= svc.MaxOpenOrders {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "存在未完结订单 (the user has %d unfinished orders)", open)
		}
	}
	if h.takeRisk(c.mchID, req.OpenID) {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "综合评估不通过")
	}
	orderID, err := randomString(32, digits)
	if err != nil {
		return reply{}, err
	}
	o := &psOrder{mchID: c.mchID, digest: digest, req: req, orderID: "1000000000" + orderID[10:], state: psDoing,
		desc: psUserConfirm, payments: req.PostPayments, discounts: req.PostDiscounts, timeRange: *req.TimeRange,
		location: req.Location}
	if !noConfirm {
		pkg, err := randomString(32, alnum)
		if err != nil {
			return reply{}, err
		}
		o.state, o.desc, o.pkg = psCreated, "", "DEV"+pkg
	}
	h.ps.orders[key] = o
	return reply{status: http.StatusOK, body: o.view(false)}, nil
}

// validateCreate checks the create body (wechatpay-apiv3.md 2.2 O1).
func (h *payscoreAPI) validateCreate(req *psCreateRequest, svc PayScoreService) error {
	switch {
	case !psValidCode(req.OutOrderNo, 32, "_-|*"):
		return paramError("输入源“/body/out_order_no”字符串规则校验失败，应为1-32位数字、大小写字母或_-|*")
	case req.ServiceIntroduction == "":
		return psRequired("/body/service_introduction", "服务信息")
	case req.RiskFund == nil || req.RiskFund.Name == "":
		return psRequired("/body/risk_fund", "订单风险金")
	case req.TimeRange == nil || req.TimeRange.StartTime == "":
		return psRequired("/body/time_range/start_time", "服务开始时间")
	case req.NotifyURL == "":
		return psRequired("/body/notify_url", "商户回调地址")
	}
	for field, v := range map[string]struct {
		s   string
		max int
	}{
		"/body/service_introduction":         {req.ServiceIntroduction, 20},
		"/body/attach":                       {req.Attach, 256},
		"/body/risk_fund/description":        {req.RiskFund.Description, 30},
		"/body/time_range/start_time_remark": {req.TimeRange.StartTimeRemark, 20},
		"/body/time_range/end_time_remark":   {req.TimeRange.EndTimeRemark, 20},
		"/body/notify_url":                   {req.NotifyURL, 255},
	} {
		if err := psTooLong(field, v.max, v.s); err != nil {
			return err
		}
	}
	if !slices.Contains(svc.riskFundNames(), req.RiskFund.Name) {
		return paramError("订单风险金额名称不符合要求 (risk_fund.name %s; service %s is in %s mode: %v)", req.RiskFund.Name, svc.ServiceID, svc.Mode, svc.riskFundNames())
	}
	if req.RiskFund.Amount <= 0 || req.RiskFund.Amount > svc.RiskCap {
		return paramError("271316656 订单风险金额超过服务ID的风险金额上限 (risk_fund.amount %d, cap %d)", req.RiskFund.Amount, svc.RiskCap)
	}
	if !psValidTime(req.TimeRange.StartTime) {
		return paramError("输入源“/body/time_range/start_time”格式错误，应为yyyyMMddHHmmss")
	}
	if e := req.TimeRange.EndTime; e != "" && (!psValidTime(e) || e < req.TimeRange.StartTime) {
		return paramError("输入源“/body/time_range/end_time”格式错误或早于开始时间")
	}
	if err := checkNotifyURL(req.NotifyURL); err != nil {
		return err
	}
	if err := psCheckItems("/body/post_payments", req.PostPayments, 100, "商品信息"); err != nil {
		return err
	}
	return psCheckItems("/body/post_discounts", req.PostDiscounts, 30, "")
}

// takeRisk consumes a risk-rejection fault for the user. ps.mu must be held.
func (h *payscoreAPI) takeRisk(mchID, openID string) bool {
	for i, r := range h.ps.risk {
		if r.mchID != mchID || (r.openID != "" && r.openID != openID) {
			continue
		}
		if r.remaining > 0 {
			r.remaining--
			if r.remaining == 0 {
				h.ps.risk = slices.Delete(h.ps.risk, i, i+1)
			}
		}
		return true
	}
	return false
}

// orderFor finds the order a call addresses and checks its appid (create,
// complete and cancel must use the same appid: error 4108). ps.mu must be held.
func (h *payscoreAPI) orderFor(c *call, serviceID, appID string) (*psOrder, error) {
	cfg := c.m.config()
	if _, err := h.checkServiceApp(cfg, serviceID, appID); err != nil {
		return nil, err
	}
	o, ok := h.ps.orders[c.mchID+"/"+c.params["out_order_no"]]
	if !ok || o.req.ServiceID != serviceID {
		return nil, psOrderNotExist()
	}
	if o.req.AppID != appID {
		return nil, paramError("4108 appid与创建订单时不一致 (order was created with appid %s)", o.req.AppID)
	}
	return o, nil
}

// query is GET /v3/payscore/serviceorder?out_order_no|query_id=&service_id=&appid=.
func (h *payscoreAPI) query(_ context.Context, c *call) (reply, error) {
	no, qid := c.query.Get("out_order_no"), c.query.Get("query_id")
	if (no == "") == (qid == "") {
		return reply{}, paramError("out_order_no和query_id必须且只能填写一个")
	}
	if qid != "" {
		// query_id comes from the confirm page of need-confirm orders only.
		return reply{}, psOrderNotExist()
	}
	c.params = map[string]string{"out_order_no": no}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	o, err := h.orderFor(c, c.query.Get("service_id"), c.query.Get("appid"))
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: o.view(true)}, nil
}

type psCancelRequest struct {
	AppID     string `json:"appid"`
	ServiceID string `json:"service_id"`
	Reason    string `json:"reason"`
}

// cancel: CREATED or DOING/USER_CONFIRM only (after complete: modify or sync).
func (h *payscoreAPI) cancel(_ context.Context, c *call) (reply, error) {
	var req psCancelRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := psCheckReason(req.Reason); err != nil {
		return reply{}, err
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	o, err := h.orderFor(c, req.ServiceID, req.AppID)
	if err != nil {
		return reply{}, err
	}
	if !(o.state == psCreated || (o.state == psDoing && o.desc == psUserConfirm)) {
		if o.state == psDoing {
			return reply{}, apiErr(http.StatusBadRequest, "INVALID_ORDER_STATE", "271316592 订单当前状态不允许取消，请使用修改订单金额或同步订单信息 (order is DOING/%s)", o.desc)
		}
		return reply{}, psStateError(o, "取消")
	}
	o.state, o.desc = psRevoked, ""
	return reply{status: http.StatusOK, body: map[string]string{"appid": o.req.AppID, "mchid": o.mchID,
		"out_order_no": o.req.OutOrderNo, "service_id": o.req.ServiceID, "order_id": o.orderID}}, nil
}

type psCompleteRequest struct {
	AppID         string       `json:"appid"`
	ServiceID     string       `json:"service_id"`
	PostPayments  []psItem     `json:"post_payments"`
	PostDiscounts []psItem     `json:"post_discounts"`
	TotalAmount   *int64       `json:"total_amount"`
	TimeRange     *psTimeRange `json:"time_range"`
	Location      *psLocation  `json:"location"`
	ProfitSharing bool         `json:"profit_sharing"`
	GoodsTag      string       `json:"goods_tag"`
	Device        *psDevice    `json:"device"`
}

// checkAmounts validates post_payments/post_discounts/total_amount of
// complete and modify.
func psCheckAmounts(payments, discounts []psItem, total *int64) error {
	if len(payments) == 0 {
		return psRequired("/body/post_payments", "后付费项目")
	}
	if total == nil {
		return psRequired("/body/total_amount", "总金额")
	}
	if err := psCheckItems("/body/post_payments", payments, 100, "商品信息"); err != nil {
		return err
	}
	if err := psCheckItems("/body/post_discounts", discounts, 30, ""); err != nil {
		return err
	}
	if sum := psSumItems(payments, discounts); *total != sum || *total < 0 {
		return paramError("total_amount(%d)与后付费项目金额减去优惠金额(%d)不一致", *total, sum)
	}
	return nil
}

// cap is the highest total the service accepts for o: the service cap in
// 先享 mode, the create-time risk_fund.amount in 先免 mode (2.2 O5 rules).
func (svc PayScoreService) capFor(o *psOrder) int64 {
	if svc.Mode == PayScoreDepositFree && o.req.RiskFund != nil {
		return o.req.RiskFund.Amount
	}
	return svc.RiskCap
}

// complete: DOING/USER_CONFIRM only; the order then waits for WeChat's deduction.
func (h *payscoreAPI) complete(_ context.Context, c *call) (reply, error) {
	var req psCompleteRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := psCheckAmounts(req.PostPayments, req.PostDiscounts, req.TotalAmount); err != nil {
		return reply{}, err
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	o, err := h.orderFor(c, req.ServiceID, req.AppID)
	if err != nil {
		return reply{}, err
	}
	if o.state != psDoing || o.desc != psUserConfirm {
		return reply{}, psStateError(o, "完结")
	}
	svc, _ := h.ps.service(c.m.config(), req.ServiceID)
	if cp := svc.capFor(o); *req.TotalAmount > cp {
		return reply{}, paramError("271316656 total_amount(%d)超过风险金额上限(%d)", *req.TotalAmount, cp)
	}
	tr := o.timeRange
	if req.TimeRange != nil {
		if req.TimeRange.EndTime != "" {
			tr.EndTime = req.TimeRange.EndTime
		}
		if req.TimeRange.EndTimeRemark != "" {
			tr.EndTimeRemark = req.TimeRange.EndTimeRemark
		}
	}
	switch {
	case tr.EndTime == "":
		return reply{}, psRequired("/body/time_range/end_time", "服务结束时间")
	case !psValidTime(tr.EndTime):
		return reply{}, paramError("输入源“/body/time_range/end_time”格式错误，应为yyyyMMddHHmmss")
	case tr.EndTime < tr.StartTime:
		return reply{}, paramError("实际服务结束时间早于服务开始时间")
	}
	o.timeRange, o.payments, o.discounts, o.total = tr, req.PostPayments, req.PostDiscounts, *req.TotalAmount
	if req.Location != nil && req.Location.EndLocation != "" {
		if o.location == nil {
			o.location = &psLocation{}
		}
		o.location.EndLocation = req.Location.EndLocation
	}
	o.desc, o.collection = psMchComplete, psUserPaying
	return reply{status: http.StatusOK, body: o.view(false)}, nil
}

type psModifyRequest struct {
	AppID         string    `json:"appid"`
	ServiceID     string    `json:"service_id"`
	PostPayments  []psItem  `json:"post_payments"`
	PostDiscounts []psItem  `json:"post_discounts"`
	TotalAmount   *int64    `json:"total_amount"`
	Reason        string    `json:"reason"`
	Device        *psDevice `json:"device"`
}

// modify: DOING/MCH_COMPLETE while USER_PAYING; the amount may only go down.
func (h *payscoreAPI) modify(_ context.Context, c *call) (reply, error) {
	var req psModifyRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	if err := psCheckAmounts(req.PostPayments, req.PostDiscounts, req.TotalAmount); err != nil {
		return reply{}, err
	}
	if err := psCheckReason(req.Reason); err != nil {
		return reply{}, err
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	o, err := h.orderFor(c, req.ServiceID, req.AppID)
	if err != nil {
		return reply{}, err
	}
	if o.state != psDoing || o.desc != psMchComplete || o.collection != psUserPaying {
		return reply{}, psStateError(o, "修改金额")
	}
	if *req.TotalAmount >= o.total {
		return reply{}, paramError("修改后的金额(%d)必须小于原金额(%d)，仅可下调", *req.TotalAmount, o.total)
	}
	o.payments, o.discounts, o.total = req.PostPayments, req.PostDiscounts, *req.TotalAmount
	return reply{status: http.StatusOK, body: o.view(true)}, nil
}

type psSyncRequest struct {
	AppID     string `json:"appid"`
	ServiceID string `json:"service_id"`
	Type      string `json:"type"`
	Detail    *struct {
		PaidTime string `json:"paid_time"`
	} `json:"detail"`
}

// sync with type Order_Paid: the user paid elsewhere; WeChat stops deducting.
func (h *payscoreAPI) sync(_ context.Context, c *call) (reply, error) {
	var req psSyncRequest
	if err := c.decode(&req); err != nil {
		return reply{}, err
	}
	switch {
	case req.Type != "Order_Paid":
		return reply{}, paramError("输入源“/body/type”取值错误，仅支持Order_Paid (got %q)", req.Type)
	case req.Detail == nil || req.Detail.PaidTime == "":
		return reply{}, psRequired("/body/detail/paid_time", "收款成功时间")
	case !psValidPaidTime(req.Detail.PaidTime):
		return reply{}, paramError("输入源“/body/detail/paid_time”格式错误，应为yyyyMMddHHmmss或yyyyMMdd")
	}
	h.ps.lock(h.s)
	defer h.ps.mu.Unlock()
	o, err := h.orderFor(c, req.ServiceID, req.AppID)
	if err != nil {
		return reply{}, err
	}
	if o.state != psDoing || o.desc != psMchComplete || o.collection != psUserPaying {
		return reply{}, psStateError(o, "同步")
	}
	o.state, o.desc, o.collection, o.paid = psDone, "", psUserPaid, o.total
	o.details = append(o.details, psDetail{Seq: int64(len(o.details) + 1), Amount: o.total, PaidType: "MCH", PaidTime: req.Detail.PaidTime})
	return reply{status: http.StatusOK, body: o.view(true)}, nil
}
