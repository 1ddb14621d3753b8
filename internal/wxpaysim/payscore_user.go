package wxpaysim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// The user's side of Pay Score and the simulator's configuration of it: Go
// API for in-process tests, admin routes for everything else.

// SetPayScoreService configures (or reconfigures) a Pay Score service of a
// merchant; the service then belongs to the merchant even if it is not in
// MerchantConfig.ServiceIDs. Errors: ErrUnknownMerchant, ErrInvalid.
func (s *Sim) SetPayScoreService(mchID string, svc PayScoreService) error {
	if _, err := s.merchant(mchID); err != nil {
		return err
	}
	switch {
	case svc.ServiceID == "":
		return fmt.Errorf("%w: pay score service needs a service_id", ErrInvalid)
	case svc.Mode != "" && svc.Mode != PayScoreEnjoyFirst && svc.Mode != PayScoreDepositFree:
		return fmt.Errorf("%w: pay score mode %q (want %s or %s)", ErrInvalid, svc.Mode, PayScoreEnjoyFirst, PayScoreDepositFree)
	case svc.RiskCap < 0 || svc.MaxOpenOrders < 0:
		return fmt.Errorf("%w: risk_cap and max_open_orders must not be negative", ErrInvalid)
	}
	if svc.NotifyURL != "" {
		if ae := checkNotifyURL(svc.NotifyURL); ae != nil {
			return fmt.Errorf("%w: %s", ErrInvalid, ae.Message)
		}
	}
	ps := s.payscore()
	ps.lock(s)
	defer ps.mu.Unlock()
	svc.AppIDs = slices.Clone(svc.AppIDs)
	ps.services[mchID+"/"+svc.ServiceID] = svc
	return nil
}

// SetPayScoreRiskRejection makes Pay Score risk control reject the next
// count creates ("综合评估不通过") of the merchant's user openID ("" for any
// user); count 0 rejects until ClearPayScoreRiskRejections or Reset.
func (s *Sim) SetPayScoreRiskRejection(mchID, openID string, count int) error {
	if _, err := s.merchant(mchID); err != nil {
		return err
	}
	if count < 0 {
		return fmt.Errorf("%w: negative count", ErrInvalid)
	}
	ps := s.payscore()
	ps.lock(s)
	defer ps.mu.Unlock()
	ps.risk = append(ps.risk, &psRisk{mchID: mchID, openID: openID, remaining: count})
	return nil
}

// ClearPayScoreRiskRejections removes every risk-rejection fault.
func (s *Sim) ClearPayScoreRiskRejections() {
	ps := s.payscore()
	ps.lock(s)
	defer ps.mu.Unlock()
	ps.risk = nil
}

// PayScoreUser is a user opening or closing a merchant's Pay Score service
// in the WeChat app.
type PayScoreUser struct {
	MchID string `json:"mchid"`
	// ServiceID defaults to the authorization code's service, else the
	// merchant's first service.
	ServiceID string `json:"service_id,omitempty"`
	OpenID    string `json:"openid"`
	// AuthorizationCode is the merchant's pre-authorization code the user
	// opened the authorization page with ("" for ordinary authorization).
	AuthorizationCode string `json:"authorization_code,omitempty"`
	// AppID defaults to the code's appid, else the merchant's first appid.
	AppID string `json:"appid,omitempty"`
}

// PayScoreUserResult is the outcome of a user action: the notification
// queued and its plaintext.
type PayScoreUserResult struct {
	NotificationID string          `json:"notification_id"`
	Resource       json.RawMessage `json:"resource"`
}

// psAuthNote is an authorization callback prepared under ps.mu, sent after.
type psAuthNote struct {
	mchID, url, eventType string
	plain                 []byte
}

type psAuthEvent struct {
	AppID             string `json:"appid"`
	MchID             string `json:"mchid"`
	ServiceID         string `json:"service_id"`
	OpenID            string `json:"openid"`
	UserServiceStatus string `json:"user_service_status"`
	OpenOrCloseTime   string `json:"openorclose_time"`
	AuthorizationCode string `json:"authorization_code,omitempty"`
}

// authNote builds the PAYSCORE.USER_OPEN/CLOSE_SERVICE callback. It goes to
// the pre-authorization's notify_url, else the service_notify_url, else the
// merchant's notify_url (wechatpay-apiv3.md 2.6). ps.mu must be held.
func (ps *payscoreState) authNote(cfg MerchantConfig, a *psAuth, code *psCode, open bool, at time.Time) *psAuthNote {
	ev := psAuthEvent{AppID: a.appID, MchID: cfg.MchID, ServiceID: a.serviceID, OpenID: a.openID,
		UserServiceStatus: "USER_CLOSE_SERVICE", OpenOrCloseTime: formatTime(at), AuthorizationCode: a.code}
	n := &psAuthNote{mchID: cfg.MchID, eventType: "PAYSCORE.USER_CLOSE_SERVICE"}
	if open {
		ev.UserServiceStatus, n.eventType = "USER_OPEN_SERVICE", "PAYSCORE.USER_OPEN_SERVICE"
	}
	if svc, ok := ps.service(cfg, a.serviceID); ok {
		n.url = svc.NotifyURL
	}
	if code != nil && code.notifyURL != "" {
		n.url = code.notifyURL
	}
	n.plain, _ = marshalJSON(ev) // a struct of strings always marshals
	return n
}

// closeLocked ends an authorization (user revoke or merchant terminate).
// ps.mu must be held.
func (h *payscoreAPI) closeLocked(cfg MerchantConfig, a *psAuth, code *psCode) *psAuthNote {
	now := h.s.Now()
	a.state, a.cancelAt = psUnavailable, now
	if code != nil && code.openID == a.openID {
		code.state, code.cancelAt = psUnavailable, now
	}
	return h.ps.authNote(cfg, a, code, false, now)
}

// notifyAuth sends an authorization callback. The state change has
// happened: a failure to queue is logged, not answered.
func (h *payscoreAPI) notifyAuth(ctx context.Context, n *psAuthNote) error {
	if _, err := h.send(ctx, n); err != nil {
		h.s.logf("wxpaysim: %s not queued: %v", n.eventType, err)
	}
	return nil
}

func (h *payscoreAPI) send(ctx context.Context, n *psAuthNote) (string, error) {
	summary := "用户解除服务授权"
	if n.eventType == "PAYSCORE.USER_OPEN_SERVICE" {
		summary = "用户开启服务授权"
	}
	return h.s.Notify(ctx, Notification{MchID: n.mchID, URL: n.url, EventType: n.eventType, OriginalType: "payscore",
		Summary: summary, Plaintext: n.plain})
}

// userTarget resolves the merchant, service and appid of a user action.
// ps.mu must be held.
func (h *payscoreAPI) userTarget(cfg MerchantConfig, u *PayScoreUser) (*psCode, error) {
	var code *psCode
	if u.AuthorizationCode != "" {
		c, ok := h.ps.codes[cfg.MchID+"/"+u.AuthorizationCode]
		if !ok {
			return nil, fmt.Errorf("%w: merchant %s has no pre-authorization %q", ErrInvalid, cfg.MchID, u.AuthorizationCode)
		}
		code = c
		if u.ServiceID == "" {
			u.ServiceID = c.serviceID
		}
		if u.AppID == "" {
			u.AppID = c.appID
		}
		if u.ServiceID != c.serviceID {
			return nil, fmt.Errorf("%w: authorization code %s belongs to service %s, not %s", ErrInvalid, c.code, c.serviceID, u.ServiceID)
		}
	}
	if u.ServiceID == "" && len(cfg.ServiceIDs) > 0 {
		u.ServiceID = cfg.ServiceIDs[0]
	}
	if u.AppID == "" && len(cfg.AppIDs) > 0 {
		u.AppID = cfg.AppIDs[0]
	}
	if _, ok := h.ps.service(cfg, u.ServiceID); !ok {
		return nil, fmt.Errorf("%w: merchant %s has no pay score service %q", ErrInvalid, cfg.MchID, u.ServiceID)
	}
	if u.OpenID == "" {
		return nil, fmt.Errorf("%w: openid is required", ErrInvalid)
	}
	return code, nil
}

func (s *Sim) payscoreAPI() *payscoreAPI { return &payscoreAPI{s: s, ps: s.payscore()} }

// AuthorizePayScore makes a user authorize (open) the service, with or
// without the merchant's pre-authorization code, and sends
// PAYSCORE.USER_OPEN_SERVICE. Errors: ErrUnknownMerchant, ErrInvalid,
// ErrOrderState (the user has already authorized the service, or the code
// was used by someone else).
func (s *Sim) AuthorizePayScore(ctx context.Context, u PayScoreUser) (PayScoreUserResult, error) {
	m, err := s.merchant(u.MchID)
	if err != nil {
		return PayScoreUserResult{}, err
	}
	cfg := m.config()
	h := s.payscoreAPI()
	h.ps.lock(s)
	code, err := h.userTarget(cfg, &u)
	if err != nil {
		h.ps.mu.Unlock()
		return PayScoreUserResult{}, err
	}
	key := cfg.MchID + "/" + u.ServiceID + "/" + u.OpenID
	a := h.ps.auths[key]
	if a != nil && a.state == psAvailable {
		h.ps.mu.Unlock()
		return PayScoreUserResult{}, fmt.Errorf("%w: user %s has already authorized service %s", ErrOrderState, u.OpenID, u.ServiceID)
	}
	if code != nil && code.openID != "" && code.openID != u.OpenID {
		h.ps.mu.Unlock()
		return PayScoreUserResult{}, fmt.Errorf("%w: authorization code %s was used by another user", ErrOrderState, code.code)
	}
	now := s.Now()
	a = &psAuth{appID: u.AppID, serviceID: u.ServiceID, openID: u.OpenID, code: u.AuthorizationCode, state: psAvailable, successAt: now}
	h.ps.auths[key] = a
	if code != nil {
		code.openID, code.state, code.successAt, code.cancelAt = u.OpenID, psAvailable, now, time.Time{}
	}
	n := h.ps.authNote(cfg, a, code, true, now)
	h.ps.mu.Unlock()
	id, err := h.send(ctx, n)
	res := PayScoreUserResult{NotificationID: id, Resource: n.plain}
	if err != nil {
		return res, fmt.Errorf("wxpaysim: authorized but PAYSCORE.USER_OPEN_SERVICE not queued: %w", err)
	}
	return res, nil
}

// RevokePayScore makes a user close the service in the WeChat app and
// sends PAYSCORE.USER_CLOSE_SERVICE. Errors: ErrUnknownMerchant,
// ErrInvalid, ErrOrderState (no active authorization).
func (s *Sim) RevokePayScore(ctx context.Context, u PayScoreUser) (PayScoreUserResult, error) {
	m, err := s.merchant(u.MchID)
	if err != nil {
		return PayScoreUserResult{}, err
	}
	cfg := m.config()
	h := s.payscoreAPI()
	h.ps.lock(s)
	if _, err := h.userTarget(cfg, &u); err != nil {
		h.ps.mu.Unlock()
		return PayScoreUserResult{}, err
	}
	a := h.ps.auths[cfg.MchID+"/"+u.ServiceID+"/"+u.OpenID]
	if a == nil || a.state != psAvailable {
		h.ps.mu.Unlock()
		return PayScoreUserResult{}, fmt.Errorf("%w: user %s has no active authorization of service %s", ErrOrderState, u.OpenID, u.ServiceID)
	}
	n := h.closeLocked(cfg, a, h.ps.codes[cfg.MchID+"/"+a.code])
	h.ps.mu.Unlock()
	id, err := h.send(ctx, n)
	res := PayScoreUserResult{NotificationID: id, Resource: n.plain}
	if err != nil {
		return res, fmt.Errorf("wxpaysim: revoked but PAYSCORE.USER_CLOSE_SERVICE not queued: %w", err)
	}
	return res, nil
}

// PayScoreDeduction is one attempt of WeChat's automatic deduction of a
// completed order (DOING/MCH_COMPLETE, collection USER_PAYING).
type PayScoreDeduction struct {
	MchID      string `json:"mchid"`
	OutOrderNo string `json:"out_order_no"`
	// Fail makes the attempt fail (e.g. the user's balance is short): the
	// order stays USER_PAYING and WeChat retries later (another attempt).
	Fail bool `json:"fail,omitempty"`
	// DropCallback succeeds but never delivers PAYSCORE.USER_PAID, the
	// callback the merchant's sweep has to make up for.
	DropCallback bool `json:"drop_callback,omitempty"`
}

// PayScoreDeductionResult is the outcome of a deduction attempt.
type PayScoreDeductionResult struct {
	State          string          `json:"state"`           // DOING (failed) or DONE
	Attempts       int             `json:"attempts"`        // attempts so far, this one included
	TransactionID  string          `json:"transaction_id"`  // on success
	NotificationID string          `json:"notification_id"` // "" when failed or dropped
	Order          json.RawMessage `json:"order"`           // the order as the query API shows it
}

// DeductPayScore runs one deduction attempt. On success the order becomes
// DONE with collection USER_PAID (paid_type NEWTON, a transaction_id) and
// PAYSCORE.USER_PAID goes to the order's notify_url. Errors:
// ErrUnknownMerchant, ErrOrderNotFound, ErrOrderState (not awaiting payment).
func (s *Sim) DeductPayScore(ctx context.Context, d PayScoreDeduction) (PayScoreDeductionResult, error) {
	m, err := s.merchant(d.MchID)
	if err != nil {
		return PayScoreDeductionResult{}, err
	}
	now := s.Now()
	txnID, err := newTransactionID(now)
	if err != nil {
		return PayScoreDeductionResult{}, err
	}
	ps := s.payscore()
	ps.lock(s)
	o, ok := ps.orders[m.config().MchID+"/"+d.OutOrderNo]
	if !ok {
		ps.mu.Unlock()
		return PayScoreDeductionResult{}, fmt.Errorf("%w: merchant %s pay score out_order_no %q", ErrOrderNotFound, d.MchID, d.OutOrderNo)
	}
	if o.state != psDoing || o.desc != psMchComplete || o.collection != psUserPaying {
		st := o.state + "/" + o.desc
		ps.mu.Unlock()
		return PayScoreDeductionResult{}, fmt.Errorf("%w: order %s is %s, not awaiting deduction", ErrOrderState, d.OutOrderNo, st)
	}
	o.attempts++
	res := PayScoreDeductionResult{State: o.state, Attempts: o.attempts}
	if !d.Fail {
		o.state, o.desc, o.collection, o.paid = psDone, "", psUserPaid, o.total
		o.details = append(o.details, psDetail{Seq: int64(len(o.details) + 1), Amount: o.total, PaidType: "NEWTON",
			PaidTime: now.In(time.FixedZone("CST", 8*3600)).Format("20060102150405"), TransactionID: txnID})
		res.State, res.TransactionID = o.state, txnID
	}
	plain, err := marshalJSON(o.view(true))
	url := o.req.NotifyURL
	ps.mu.Unlock()
	if err != nil {
		return res, err
	}
	res.Order = plain
	if d.Fail || d.DropCallback {
		return res, nil
	}
	res.NotificationID, err = s.Notify(ctx, Notification{MchID: d.MchID, URL: url, EventType: "PAYSCORE.USER_PAID",
		OriginalType: "payscore", Summary: "微信支付分服务订单支付成功", Plaintext: plain})
	if err != nil {
		return res, fmt.Errorf("wxpaysim: deducted but PAYSCORE.USER_PAID not queued: %w", err)
	}
	return res, nil
}

// payscoreAdminRoutes are the user-side actions of Pay Score under /sim/.
func (s *Sim) payscoreAdminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodPost, "/sim/payscore/services", "configure a pay score service {mchid,service_id,mode(enjoy_first|deposit_free),risk_cap,need_confirm,appids,notify_url,max_open_orders}", s.adminPayScoreService},
		{http.MethodPost, "/sim/payscore/users/authorize", "a user authorizes the service {mchid,openid,authorization_code?,service_id?,appid?} -> PAYSCORE.USER_OPEN_SERVICE", s.adminPayScoreAuthorize},
		{http.MethodPost, "/sim/payscore/users/revoke", "a user revokes the authorization {mchid,openid,service_id?} -> PAYSCORE.USER_CLOSE_SERVICE", s.adminPayScoreRevoke},
		{http.MethodPost, "/sim/payscore/orders/deduct", "WeChat deducts a completed order {mchid,out_order_no,fail?,drop_callback?} -> PAYSCORE.USER_PAID", s.adminPayScoreDeduct},
		{http.MethodPost, "/sim/payscore/risk-rejections", "reject the next creates with 综合评估不通过 {mchid,openid?,count?(0: until cleared)}", s.adminPayScoreRisk},
		{http.MethodDelete, "/sim/payscore/risk-rejections", "clear the risk rejections", s.adminPayScoreClearRisk},
	}
}

func (s *Sim) adminPayScoreService(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID string `json:"mchid"`
		PayScoreService
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.SetPayScoreService(req.MchID, req.PayScoreService); err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, req.PayScoreService.withDefaults())
}

func (s *Sim) adminPayScoreUser(w http.ResponseWriter, r *http.Request, act func(context.Context, PayScoreUser) (PayScoreUserResult, error)) {
	var u PayScoreUser
	if err := decodeAdmin(r, &u); err != nil {
		adminFail(w, err)
		return
	}
	res, err := act(r.Context(), u)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Sim) adminPayScoreAuthorize(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	s.adminPayScoreUser(w, r, s.AuthorizePayScore)
}

func (s *Sim) adminPayScoreRevoke(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	s.adminPayScoreUser(w, r, s.RevokePayScore)
}

func (s *Sim) adminPayScoreDeduct(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var d PayScoreDeduction
	if err := decodeAdmin(r, &d); err != nil {
		adminFail(w, err)
		return
	}
	res, err := s.DeductPayScore(r.Context(), d)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Sim) adminPayScoreRisk(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID  string `json:"mchid"`
		OpenID string `json:"openid"`
		Count  int    `json:"count"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.SetPayScoreRiskRejection(req.MchID, req.OpenID, req.Count); err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"mchid": req.MchID, "openid": req.OpenID, "count": req.Count})
}

func (s *Sim) adminPayScoreClearRisk(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	s.ClearPayScoreRiskRejections()
	writeJSON(w, http.StatusOK, map[string]string{"status": "cleared"})
}
