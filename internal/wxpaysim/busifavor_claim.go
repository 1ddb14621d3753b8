package wxpaysim

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PluginCouponParam is one entry of the mini-program coupon plugin's
// send_coupon_params (wechatpay-apiv3.md 3.5).
type PluginCouponParam struct {
	StockID              string `json:"stock_id"`
	OutRequestNo         string `json:"out_request_no"`
	CouponCode           string `json:"coupon_code,omitempty"`
	CustomizeSendTime    string `json:"customize_send_time,omitempty"`
	CreateCouponMerchant string `json:"create_coupon_merchant,omitempty"`
}

// CouponClaim is a user pressing "claim" in the send-coupon plugin: the
// parameters and sign the merchant's server computed, plus who the user is.
type CouponClaim struct {
	OpenID             string              `json:"openid"`
	AppID              string              `json:"appid"`
	SendCouponMerchant string              `json:"send_coupon_merchant"`
	SendCouponParams   []PluginCouponParam `json:"send_coupon_params"`
	Sign               string              `json:"sign"`
}

// ClaimedCoupon is the plugin's per-coupon result (bind:sendcoupon).
type ClaimedCoupon struct {
	StockID      string `json:"stock_id"`
	OutRequestNo string `json:"out_request_no"`
	CouponCode   string `json:"coupon_code,omitempty"`
	Code         string `json:"code"` // SUCCESS or the error code
	Message      string `json:"message,omitempty"`
}

// ClaimResult is the outcome of ClaimCoupons.
type ClaimResult struct {
	Results         []ClaimedCoupon `json:"send_coupon_result"`
	NotificationIDs []string        `json:"notification_ids"` // COUPON.SEND queued
}

// SetAPIv2Key registers the merchant's APIv2 key, which the plugin checks
// signs with. It is merchant configuration: Reset keeps it.
func (s *Sim) SetAPIv2Key(mchID, key string) error {
	if len(key) != 32 {
		return fmt.Errorf("%w: the APIv2 key must be 32 bytes, got %d", ErrInvalid, len(key))
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.busifavor.apiv2Key = key
	m.mu.Unlock()
	return nil
}

// LoseAnswers arms the next count successful answers of a merchant-coupon
// route (its pattern, e.g. /v3/marketing/busifavor/coupons/use) to be
// replaced by 500 SYSTEM_ERROR after the request took effect. Unlike a
// KindError fault, which answers without running the handler, this is the
// lost answer a retry with the same request number must survive. Reset
// clears it.
func (s *Sim) LoseAnswers(mchID, pattern string, count int) error {
	known := false
	for _, rt := range s.busifavorRoutes() {
		known = known || rt.pattern == pattern
	}
	if !known || count < 1 {
		return fmt.Errorf("%w: LoseAnswers needs a merchant-coupon route pattern and count >= 1 (got %q, %d)", ErrInvalid, pattern, count)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.busifavor.lose[pattern] += count
	m.mu.Unlock()
	return nil
}

// PluginSign computes the send-coupon plugin sign the way WeChat Pay checks
// it (wechatpay-apiv3.md 3.5): the parameters flattened with a 0-based
// index suffix plus send_coupon_merchant, sorted by name, joined as k=v&...
// with raw values, "&key=<APIv2 key>" appended, HMAC-SHA256 keyed with the
// APIv2 key, upper-case hex. Empty optional values are left out.
func PluginSign(apiv2Key, sendCouponMerchant string, params []PluginCouponParam) string {
	kv := map[string]string{"send_coupon_merchant": sendCouponMerchant}
	for i, p := range params {
		n := strconv.Itoa(i)
		for k, v := range map[string]string{"stock_id": p.StockID, "out_request_no": p.OutRequestNo, "coupon_code": p.CouponCode,
			"customize_send_time": p.CustomizeSendTime, "create_coupon_merchant": p.CreateCouponMerchant} {
			if v != "" {
				kv[k+n] = v
			}
		}
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k + "=" + kv[k])
	}
	b.WriteString("&key=" + apiv2Key)
	mac := hmac.New(sha256.New, []byte(apiv2Key))
	mac.Write([]byte(b.String()))
	return strings.ToUpper(hex.EncodeToString(mac.Sum(nil)))
}

// ClaimCoupons makes a user claim coupons through the mini-program plugin:
// the sign is checked with send_coupon_merchant's APIv2 key, then every
// coupon is sent (limits, code pool, out_request_no idempotency) and
// COUPON.SEND (BUSICOUPON_SEND_CHANNEL_MINIAPP) goes to the stock creator's
// callback URL. Per-coupon failures are reported in the result, as the
// plugin does. Errors: ErrUnknownMerchant, ErrInvalid (bad sign, no APIv2
// key, missing fields).
func (s *Sim) ClaimCoupons(ctx context.Context, cl CouponClaim) (ClaimResult, error) {
	if cl.OpenID == "" || cl.AppID == "" || len(cl.SendCouponParams) == 0 {
		return ClaimResult{}, fmt.Errorf("%w: claim needs openid, appid and send_coupon_params", ErrInvalid)
	}
	sender, err := s.merchant(cl.SendCouponMerchant)
	if err != nil {
		return ClaimResult{}, err
	}
	sender.mu.Lock()
	key, appids := sender.busifavor.apiv2Key, sender.cfg.AppIDs
	sender.mu.Unlock()
	if key == "" {
		return ClaimResult{}, fmt.Errorf("%w: merchant %s has no APIv2 key (POST /sim/busifavor/apiv2-key)", ErrInvalid, cl.SendCouponMerchant)
	}
	want := PluginSign(key, cl.SendCouponMerchant, cl.SendCouponParams)
	if !hmac.Equal([]byte(want), []byte(cl.Sign)) {
		return ClaimResult{}, fmt.Errorf("%w: sign does not verify with merchant %s's APIv2 key", ErrInvalid, cl.SendCouponMerchant)
	}
	if !slices.Contains(appids, cl.AppID) {
		return ClaimResult{}, fmt.Errorf("%w: appid %s is not bound to merchant %s", ErrInvalid, cl.AppID, cl.SendCouponMerchant)
	}
	now := s.Now()
	var res ClaimResult
	var notes []bfCouponSend
	for _, p := range cl.SendCouponParams {
		out := ClaimedCoupon{StockID: p.StockID, OutRequestNo: p.OutRequestNo, Code: "SUCCESS"}
		cp, err := s.claimOne(cl, p, now, &notes)
		if err != nil {
			ae := errorsAsAPI(err)
			out.Code, out.Message = ae.Code, ae.Message
		} else {
			out.CouponCode = cp.code
		}
		res.Results = append(res.Results, out)
	}
	res.NotificationIDs = s.queueCouponSends(ctx, notes)
	return res, nil
}

func (s *Sim) claimOne(cl CouponClaim, p PluginCouponParam, now time.Time, notes *[]bfCouponSend) (*bfCoupon, error) {
	if err := bfRequestNo("out_request_no", p.OutRequestNo, 128); err != nil {
		return nil, err
	}
	var sendTime time.Time
	if p.CustomizeSendTime != "" {
		t, err := bfParseTime("customize_send_time", p.CustomizeSendTime)
		if err != nil {
			return nil, err
		}
		sendTime = t
	}
	creator := p.CreateCouponMerchant
	if creator == "" {
		creator = cl.SendCouponMerchant
	}
	m, err := s.merchant(creator)
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, "PARAM_ERROR", "create_coupon_merchant不存在 (%s)", creator)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cp, _, err := m.busifavor.send(creator, bfSendSpec{stockID: p.StockID, openid: cl.OpenID, appid: cl.AppID, outRequestNo: p.OutRequestNo,
		code: p.CouponCode, channel: bfChannelMiniApp, sender: cl.SendCouponMerchant, sendTime: sendTime, notes: notes}, now)
	return cp, err
}

// DeleteUserCoupon is a user deleting a usable coupon from the card bag
// (coupon_state DELETED). Errors: ErrUnknownMerchant, ErrInvalid (no such
// coupon of that user), ErrOrderState (not usable).
func (s *Sim) DeleteUserCoupon(mchID, stockID, couponCode, openid string) error {
	m, err := s.merchant(mchID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := m.busifavor.coupons[stockID+"|"+couponCode]
	if cp == nil || cp.openid != openid {
		return fmt.Errorf("%w: openid %s has no coupon %s of stock %s", ErrInvalid, openid, couponCode, stockID)
	}
	if st := cp.effectiveState(s.Now()); st != bfCouponSended {
		return fmt.Errorf("%w: %s", ErrOrderState, bfDescribe(cp))
	}
	cp.state = bfCouponDeleted
	return nil
}

func (s *Sim) adminBusifavorKey(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID    string `json:"mchid"`
		APIv2Key string `json:"apiv2_key"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.SetAPIv2Key(req.MchID, req.APIv2Key); err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mchid": req.MchID, "status": "set"})
}

func (s *Sim) adminBusifavorLose(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID   string `json:"mchid"`
		Pattern string `json:"pattern"`
		Count   int    `json:"count"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.LoseAnswers(req.MchID, req.Pattern, req.Count); err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"mchid": req.MchID, "pattern": req.Pattern, "count": req.Count})
}

func (s *Sim) adminBusifavorClaim(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var cl CouponClaim
	if err := decodeAdmin(r, &cl); err != nil {
		adminFail(w, err)
		return
	}
	res, err := s.ClaimCoupons(r.Context(), cl)
	if err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Sim) adminBusifavorDelete(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID      string `json:"mchid"`
		StockID    string `json:"stock_id"`
		CouponCode string `json:"coupon_code"`
		OpenID     string `json:"openid"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.DeleteUserCoupon(req.MchID, req.StockID, req.CouponCode, req.OpenID); err != nil {
		if errors.Is(err, ErrOrderState) {
			adminError(w, http.StatusConflict, "INVALID_COUPON_STATE", err.Error())
			return
		}
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"coupon_state": bfCouponDeleted})
}
