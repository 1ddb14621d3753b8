package payscore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// tokenLifetime is how long an apply_permissions_token is usable (about 1 h,
// wechatpay-apiv3.md 2.1 A1).
const tokenLifetime = time.Hour

// defaultTerminateReason is sent when the app gives no reason.
const defaultTerminateReason = "商户解除用户授权"

// preAuthRequest is the optional body of POST /payscore/authorizations.
type preAuthRequest struct {
	// AuthorizationCode is the merchant's code; "" generates one.
	AuthorizationCode string `json:"authorization_code,omitempty"`
	// OpenID, when the app already knows the user, links the code to them.
	OpenID string `json:"openid,omitempty"`
}

// preAuthResponse is what the app needs to open the authorization page.
type preAuthResponse struct {
	ledger.PayScoreAuthorization
	ApplyPermissionsToken string `json:"apply_permissions_token"`
	TokenExpiresAt        string `json:"token_expires_at"`
	// Open is how the front end opens Pay Score's authorization page.
	Open openAuthorization `json:"open_authorization"`
}

// openAuthorization carries the parameters of the front-end jump. The
// businessType "wxpayScoreEnable" (APP/JSAPI openBusinessView) and the
// mini-program appId/path are from public examples, not from a source the
// reference confirms (wechatpay-apiv3.md 2.1 A1: UNCONFIRMED); the token is
// the one required parameter either way.
type openAuthorization struct {
	BusinessType string            `json:"business_type"`
	Query        string            `json:"query"`
	MiniProgram  miniProgramTarget `json:"mini_program"`
}

type miniProgramTarget struct {
	AppID     string            `json:"appid"`
	Path      string            `json:"path"`
	ExtraData map[string]string `json:"extra_data"`
}

// newAuthorizationCode makes "PA" + yyyyMMddHHmmss + 12 random characters.
func newAuthorizationCode(now time.Time) (string, error) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 12)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", fmt.Errorf("payscore: authorization code: %w", err)
		}
		b[i] = alphabet[n.Int64()]
	}
	return "PA" + ledger.PayScoreTime(now) + string(b), nil
}

// preAuthorize is POST /payscore/authorizations (商户预授权, A1).
func (h *Handler) preAuthorize(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in preAuthRequest
	if len(req.Body) > 0 {
		if err := apigw.DecodeJSON(req.Body, &in); err != nil {
			return nil, err
		}
	}
	now := h.now()
	if in.AuthorizationCode == "" {
		code, err := newAuthorizationCode(now)
		if err != nil {
			return nil, err
		}
		in.AuthorizationCode = code
	}
	if !ledger.ValidAuthorizationCode(in.AuthorizationCode) {
		return nil, paramError("authorization_code %q must be 1-32 characters of 0-9 A-Z a-z _ - *", in.AuthorizationCode)
	}
	if in.OpenID != "" {
		if err := checkOpenID(in.OpenID); err != nil {
			return nil, err
		}
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	notifyURL := h.deps.NotifyURL(req, notifyChannel)
	if err := checkNotifyURL(notifyURL); err != nil {
		return nil, err
	}
	stamp := ledger.WechatTime(now)
	key := ledger.AuthorizationCodeKey(svc.ID, in.AuthorizationCode)
	row := ledger.PayScoreAuthorization{ServiceID: svc.ID, AuthorizationCode: in.AuthorizationCode, OpenID: in.OpenID,
		AppID: svc.AppID, State: ledger.PayScoreUnbindUser, NotifyURL: notifyURL, CreatedAt: stamp, UpdatedAt: stamp, Source: "preauth"}
	fresh := true
	if err := h.deps.Store.Put(ctx, &store.Put{Key: key, Value: row, IfNotExists: true}); errors.Is(err, store.ErrDuplicate) {
		// The same unused code again hands out a fresh token; a used one
		// (or one linked to another user) cannot be pre-authorized again.
		var old ledger.PayScoreAuthorization
		var ce *store.ConditionError
		if !errors.As(err, &ce) || ce.Decode == nil || ce.Decode(&old) != nil || old.State != ledger.PayScoreUnbindUser || old.OpenID != in.OpenID {
			return nil, apigw.Errorf(http.StatusConflict, CodeAuthorizationCode, "authorization_code %s is already in use", in.AuthorizationCode)
		}
		row, fresh = old, false
	} else if err != nil {
		return nil, err
	}
	var out struct {
		Token string `json:"apply_permissions_token"`
	}
	body := map[string]string{"service_id": svc.ID, "appid": svc.AppID, "authorization_code": in.AuthorizationCode, "notify_url": notifyURL}
	if _, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: wechatPermissionsPath, Body: body}, &out); err != nil {
		if definitive(err) && fresh {
			// Nothing exists at WeChat: free the code for another try.
			if derr := h.deps.Store.Delete(ctx, &store.Delete{Key: key}); derr != nil {
				h.log.ErrorContext(ctx, "payscore: drop refused pre-authorization", "error", derr)
			}
		}
		return nil, h.wechatError("pre-authorization", err)
	}
	if out.Token == "" {
		return nil, apigw.Errorf(http.StatusBadGateway, CodeUpstream, "WeChat Pay answered the pre-authorization without an apply_permissions_token")
	}
	resp := preAuthResponse{PayScoreAuthorization: row, ApplyPermissionsToken: out.Token,
		TokenExpiresAt: ledger.WechatTime(now.Add(tokenLifetime)),
		Open: openAuthorization{BusinessType: "wxpayScoreEnable", Query: "apply_permissions_token=" + url.QueryEscape(out.Token),
			MiniProgram: miniProgramTarget{AppID: "wxd8f3793ea3b935b8", Path: "pages/use/enable",
				ExtraData: map[string]string{"apply_permissions_token": out.Token}}}}
	return apigw.JSON(http.StatusCreated, resp), nil
}

// refreshUser asks WeChat for a user's authorization (A4) and caches it.
func (h *Handler) refreshUser(ctx context.Context, svc service, openid string) (*ledger.PayScoreAuthorization, error) {
	var remote wxAuthorization
	q := url.Values{"appid": {svc.AppID}, "service_id": {svc.ID}}
	_, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: wechatPermissionsByOpen + url.PathEscape(openid), Query: q}, &remote)
	switch {
	case wxpay.IsNotFound(err):
		// No record at all: the user has not authorized (UNAVAILABLE).
		remote = wxAuthorization{AuthorizationState: ledger.PayScoreUnavailable}
	case err != nil:
		return nil, h.wechatError("authorization query", err)
	}
	remote.OpenID = openid
	return h.cacheUser(ctx, svc, remote)
}

// cacheUser records a queried authorization in the user's row without
// overtaking a newer event: the notify function orders its writes by
// openorclose_time, and so does this (the query's success or cancel time
// is that time). A query that carries no time only fills a row no event
// has written.
func (h *Handler) cacheUser(ctx context.Context, svc service, remote wxAuthorization) (*ledger.PayScoreAuthorization, error) {
	key := ledger.AuthorizationKey(svc.ID, remote.OpenID)
	set := map[string]any{"service_id": svc.ID, "openid": remote.OpenID, "state": remote.AuthorizationState,
		"updated_at": ledger.WechatTime(h.now()), "source": "query"}
	for attr, v := range map[string]string{"authorization_code": remote.AuthorizationCode,
		"authorization_success_time": remote.AuthorizationSuccessTime, "cancel_authorization_time": remote.CancelAuthorizationTime} {
		if v != "" {
			set[attr] = v
		}
	}
	at := ""
	switch remote.AuthorizationState {
	case ledger.PayScoreAvailable:
		at = remote.AuthorizationSuccessTime
	case ledger.PayScoreUnavailable:
		at = remote.CancelAuthorizationTime
	}
	if at != "" {
		set["openorclose_time"] = at
	}
	err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, AllowMissing: true, ExpectBefore: map[string]any{"openorclose_time": at}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return nil, err
	}
	var out ledger.PayScoreAuthorization
	if err := h.deps.Store.Get(ctx, key, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// authorizationView is an authorization as the routes answer it.
type authorizationView struct {
	ledger.PayScoreAuthorization
	// From says where the state comes from: cache (ledger, kept fresh by
	// the notify function) or wechat (queried now).
	From string `json:"from"`
}

// getUserAuthorization is GET /payscore/users/{openid}/authorization:
// the cached state, or WeChat's (A4) when nothing is cached or ?refresh=true.
func (h *Handler) getUserAuthorization(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	openid := req.PathParams["openid"]
	if err := checkOpenID(openid); err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	if !isTrue(req.Query("refresh")) {
		var a ledger.PayScoreAuthorization
		err := h.deps.Store.Get(ctx, ledger.AuthorizationKey(svc.ID, openid), &a)
		if err == nil {
			return apigw.JSON(http.StatusOK, authorizationView{a, "cache"}), nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	a, err := h.refreshUser(ctx, svc, openid)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, authorizationView{*a, "wechat"}), nil
}

// getAuthorizationByCode is GET /payscore/authorizations/{code}. Once the
// code is bound to a user the answer comes from the user's row (kept fresh
// by the notifications); before that, or with ?refresh=true, WeChat is
// asked (A2) and the answer recorded.
func (h *Handler) getAuthorizationByCode(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	code := req.PathParams["authorization_code"]
	if !ledger.ValidAuthorizationCode(code) {
		return nil, paramError("authorization_code %q must be 1-32 characters of 0-9 A-Z a-z _ - *", code)
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	key := ledger.AuthorizationCodeKey(svc.ID, code)
	var row ledger.PayScoreAuthorization
	if err := h.deps.Store.Get(ctx, key, &row); errors.Is(err, store.ErrNotFound) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "unknown authorization_code %s (create one with POST /payscore/authorizations)", code)
	} else if err != nil {
		return nil, err
	}
	if !isTrue(req.Query("refresh")) && row.OpenID != "" {
		var user ledger.PayScoreAuthorization
		err := h.deps.Store.Get(ctx, ledger.AuthorizationKey(svc.ID, row.OpenID), &user)
		if err == nil && user.AuthorizationCode == code {
			row.State, row.OpenOrCloseTime, row.UpdatedAt = user.State, user.OpenOrCloseTime, user.UpdatedAt
			return apigw.JSON(http.StatusOK, authorizationView{row, "cache"}), nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if row.State != ledger.PayScoreUnbindUser {
			return apigw.JSON(http.StatusOK, authorizationView{row, "cache"}), nil
		}
	}
	var remote wxAuthorization
	path := wechatPermissionsByCode + url.PathEscape(code)
	if _, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodGet, Path: path, Query: url.Values{"service_id": {svc.ID}}}, &remote); err != nil {
		return nil, h.wechatError("authorization query", err)
	}
	set := map[string]any{"state": remote.AuthorizationState, "updated_at": ledger.WechatTime(h.now())}
	for attr, v := range map[string]string{"openid": remote.OpenID, "authorization_success_time": remote.AuthorizationSuccessTime,
		"cancel_authorization_time": remote.CancelAuthorizationTime} {
		if v != "" {
			set[attr] = v
		}
	}
	if err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, MustExist: true}); err != nil {
		return nil, err
	}
	if remote.OpenID != "" && remote.AuthorizationState != ledger.PayScoreUnbindUser {
		remote.AuthorizationCode = code
		if _, err := h.cacheUser(ctx, svc, remote); err != nil {
			return nil, err
		}
	}
	if err := h.deps.Store.Get(ctx, key, &row); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, authorizationView{row, "wechat"}), nil
}

// terminateBody is the optional body of the DELETE routes.
type terminateBody struct {
	Reason string `json:"reason,omitempty"`
}

func terminateReason(req *apigw.Request) (string, error) {
	var in terminateBody
	if len(req.Body) > 0 {
		if err := apigw.DecodeJSON(req.Body, &in); err != nil {
			return "", err
		}
	}
	if in.Reason == "" {
		in.Reason = defaultTerminateReason
	}
	return in.Reason, checkReason(in.Reason)
}

// markTerminated records a termination WeChat confirmed. The
// USER_CLOSE_SERVICE notification that follows finds the same state.
func (h *Handler) markTerminated(ctx context.Context, key store.Key, upsert bool, extra map[string]any) error {
	stamp := ledger.WechatTime(h.now())
	set := map[string]any{"state": ledger.PayScoreUnavailable, "terminated_at": stamp, "updated_at": stamp}
	for k, v := range extra {
		set[k] = v
	}
	err := h.deps.Store.Update(ctx, &store.Update{Key: key, Set: set, MustExist: !upsert})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// terminateUser is DELETE /payscore/users/{openid}/authorization (A5).
func (h *Handler) terminateUser(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	openid := req.PathParams["openid"]
	if err := checkOpenID(openid); err != nil {
		return nil, err
	}
	reason, err := terminateReason(req)
	if err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	key := ledger.AuthorizationKey(svc.ID, openid)
	var cur ledger.PayScoreAuthorization
	switch err := h.deps.Store.Get(ctx, key, &cur); {
	case err == nil && cur.State != ledger.PayScoreAvailable:
		return nil, apigw.Errorf(http.StatusConflict, CodeAuthorizationActive, "user %s has no active authorization (state %s)", openid, cur.State)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	body := map[string]string{"service_id": svc.ID, "appid": svc.AppID, "reason": reason}
	if _, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: wechatPermissionsByOpen + url.PathEscape(openid) + "/terminate", Body: body}, nil); err != nil {
		return nil, h.wechatError("termination", err)
	}
	if err := h.markTerminated(ctx, key, true, map[string]any{"service_id": svc.ID, "openid": openid, "source": "terminate"}); err != nil {
		return nil, err
	}
	if cur.AuthorizationCode != "" {
		if err := h.markTerminated(ctx, ledger.AuthorizationCodeKey(svc.ID, cur.AuthorizationCode), false, nil); err != nil {
			return nil, err
		}
	}
	var out ledger.PayScoreAuthorization
	if err := h.deps.Store.Get(ctx, key, &out); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, authorizationView{out, "cache"}), nil
}

// terminateByCode is DELETE /payscore/authorizations/{code} (A3).
func (h *Handler) terminateByCode(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	code := req.PathParams["authorization_code"]
	if !ledger.ValidAuthorizationCode(code) {
		return nil, paramError("authorization_code %q must be 1-32 characters of 0-9 A-Z a-z _ - *", code)
	}
	reason, err := terminateReason(req)
	if err != nil {
		return nil, err
	}
	svc, err := h.service(ctx)
	if err != nil {
		return nil, err
	}
	key := ledger.AuthorizationCodeKey(svc.ID, code)
	var row ledger.PayScoreAuthorization
	if err := h.deps.Store.Get(ctx, key, &row); errors.Is(err, store.ErrNotFound) {
		return nil, apigw.Errorf(http.StatusNotFound, apigw.CodeNotFound, "unknown authorization_code %s", code)
	} else if err != nil {
		return nil, err
	}
	state, userRow := row.State, false
	if row.OpenID != "" {
		var user ledger.PayScoreAuthorization
		err := h.deps.Store.Get(ctx, ledger.AuthorizationKey(svc.ID, row.OpenID), &user)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if err == nil && user.AuthorizationCode == code {
			state, userRow = user.State, true
		}
	}
	if state == ledger.PayScoreUnavailable {
		return nil, apigw.Errorf(http.StatusConflict, CodeAuthorizationActive, "authorization_code %s has no active authorization (state %s)", code, state)
	}
	body := map[string]string{"service_id": svc.ID, "reason": reason}
	if _, err := h.deps.WeChat.Do(ctx, wxpay.Request{Method: http.MethodPost, Path: wechatPermissionsByCode + url.PathEscape(code) + "/terminate", Body: body}, nil); err != nil {
		return nil, h.wechatError("termination", err)
	}
	if err := h.markTerminated(ctx, key, false, nil); err != nil {
		return nil, err
	}
	if userRow {
		if err := h.markTerminated(ctx, ledger.AuthorizationKey(svc.ID, row.OpenID), false, nil); err != nil {
			return nil, err
		}
	}
	if err := h.deps.Store.Get(ctx, key, &row); err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, authorizationView{row, "cache"}), nil
}
