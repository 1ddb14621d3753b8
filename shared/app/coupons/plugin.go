package coupons

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// The mini-program send-coupon plugin (wechatpay-apiv3.md 3.5).
const (
	PluginAppID   = "wxf3f436ba9bd4be7b"
	PluginVersion = "latest" // versions below 2.0.2 no longer send
	// maxPluginCoupons bounds send_coupon_params (UNCONFIRMED: the plugin
	// page gives no number; 10 is the safe reading of "a few coupons per
	// tap", the same bound the H5 send uses).
	maxPluginCoupons = 10
)

// PluginParam is one coupon of the plugin's send_coupon_params.
type PluginParam struct {
	StockID              string `json:"stock_id"`
	OutRequestNo         string `json:"out_request_no"`
	CouponCode           string `json:"coupon_code,omitempty"`
	CustomizeSendTime    string `json:"customize_send_time,omitempty"`
	CreateCouponMerchant string `json:"create_coupon_merchant,omitempty"`
}

// PluginSign computes the send-coupon plugin sign (wechatpay-apiv3.md 3.5,
// APIv2 rules): the parameters flattened with a 0-based index suffix
// (stock_id0, out_request_no0, coupon_code0, ...) plus send_coupon_merchant,
// sorted by name in ASCII order, joined as k=v&... with raw (not
// URL-encoded) values, "&key=<APIv2 key>" appended, HMAC-SHA256 keyed with
// the APIv2 key, upper-case hex. Optional parameters left empty are not
// sent and not signed.
func PluginSign(apiv2Key []byte, sendCouponMerchant string, params []PluginParam) string {
	return strings.ToUpper(hex.EncodeToString(pluginMAC(apiv2Key, pluginSignString(sendCouponMerchant, params))))
}

// pluginSignString is the string the plugin sign covers, without the key.
func pluginSignString(sendCouponMerchant string, params []PluginParam) string {
	kv := map[string]string{"send_coupon_merchant": sendCouponMerchant}
	for i, p := range params {
		n := strconv.Itoa(i)
		add := func(k, v string) {
			if v != "" {
				kv[k+n] = v
			}
		}
		add("stock_id", p.StockID)
		add("out_request_no", p.OutRequestNo)
		add("coupon_code", p.CouponCode)
		add("customize_send_time", p.CustomizeSendTime)
		add("create_coupon_merchant", p.CreateCouponMerchant)
	}
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + kv[k]
	}
	return strings.Join(parts, "&")
}

func pluginMAC(key []byte, signString string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signString + "&key=" + string(key)))
	return mac.Sum(nil)
}

// pluginInput is the plugin-sign body.
type pluginInput struct {
	SendCouponParams   []PluginParam `json:"send_coupon_params"`
	SendCouponMerchant string        `json:"send_coupon_merchant,omitempty"`
	// OpenID, when given, scopes generated out_request_no to the user: the
	// same request for the same user gets the same number (a double tap
	// claims once).
	OpenID string `json:"openid,omitempty"`
}

// pluginAnswer is what the mini-program passes to <send-coupon>.
type pluginAnswer struct {
	PluginAppID        string        `json:"plugin_appid"`
	PluginVersion      string        `json:"plugin_version"`
	SendCouponParams   []PluginParam `json:"send_coupon_params"`
	SendCouponMerchant string        `json:"send_coupon_merchant"`
	Sign               string        `json:"sign"`
}

// pluginSign is POST /coupons/plugin-sign: it validates the coupons, gives
// each an out_request_no (the caller's, or generated and recorded), and
// signs the parameters with the APIv2 key, which never leaves the function.
func (h *Handler) pluginSign(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	var in pluginInput
	if err := decode(req, &in); err != nil {
		return nil, err
	}
	if n := len(in.SendCouponParams); n < 1 || n > maxPluginCoupons {
		return nil, paramErr("send_coupon_params must hold 1..%d coupons, got %d", maxPluginCoupons, n)
	}
	if in.OpenID != "" {
		if err := validOpenID(in.OpenID); err != nil {
			return nil, err
		}
	}
	for i := range in.SendCouponParams {
		p := &in.SendCouponParams[i]
		f := func(name string) string { return fmt.Sprintf("send_coupon_params[%d].%s", i, name) }
		if err := validID(f("stock_id"), p.StockID); err != nil {
			return nil, err
		}
		if err := requestNumber(f("out_request_no"), p.OutRequestNo, maxRequestNo); err != nil {
			return nil, err
		}
		if p.CouponCode != "" {
			if err := validCode(f("coupon_code"), p.CouponCode); err != nil {
				return nil, err
			}
		}
		if p.CustomizeSendTime != "" {
			_, s, err := wechatTime(f("customize_send_time"), p.CustomizeSendTime)
			if err != nil {
				return nil, err
			}
			p.CustomizeSendTime = s
		}
		if p.CreateCouponMerchant != "" {
			if err := digits(f("create_coupon_merchant"), p.CreateCouponMerchant, 32); err != nil {
				return nil, err
			}
		}
	}
	creds, err := h.creds(ctx)
	if err != nil {
		return nil, err
	}
	if in.SendCouponMerchant == "" {
		in.SendCouponMerchant = creds.MchID
	}
	if err := digits("send_coupon_merchant", in.SendCouponMerchant, 32); err != nil {
		return nil, err
	}
	if len(creds.APIv2Key) == 0 {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeAPIv2KeyMissing, "the merchant secret has no APIv2 key: the plugin sign needs it")
	}
	for i := range in.SendCouponParams {
		if err := h.pluginRequestNo(ctx, creds.MchID, in.OpenID, &in.SendCouponParams[i]); err != nil {
			return nil, err
		}
	}
	return apigw.JSON(http.StatusOK, pluginAnswer{PluginAppID: PluginAppID, PluginVersion: PluginVersion,
		SendCouponParams: in.SendCouponParams, SendCouponMerchant: in.SendCouponMerchant,
		Sign: PluginSign(creds.APIv2Key, in.SendCouponMerchant, in.SendCouponParams)}), nil
}

// pluginRequestNo gives p its out_request_no and records it before the
// app (and WeChat, through the plugin) sees it.
func (h *Handler) pluginRequestNo(ctx context.Context, mchID, openid string, p *PluginParam) error {
	now := h.now()
	stamp := ledger.WechatTime(now)
	intent := *p
	intent.OutRequestNo = ""
	digest, err := digestOf(kindPlugin, intent)
	if err != nil {
		return err
	}
	if p.OutRequestNo == "" {
		fresh, err := ledger.NewRequestNo(mchID, now)
		if err != nil {
			return err
		}
		p.OutRequestNo = fresh
		if openid != "" {
			// The slot is per user: the same number for the same user and
			// coupon; out_request_no is unique per stock and user at WeChat.
			var prev ledger.CouponSlot
			created, err := h.deps.Store.PutIdempotent(ctx, &store.Put{Key: ledger.CouponSlotKey(kindPlugin, p.StockID+"#"+openid, digest),
				Expires: now.Add(store.IdempotencyTTL), Value: ledger.CouponSlot{Kind: kindPlugin, RequestNo: fresh, CreatedAt: stamp}}, digest, &prev)
			if err != nil {
				return fmt.Errorf("coupons: plugin: reserve out_request_no: %w", err)
			}
			if !created {
				p.OutRequestNo = prev.RequestNo
			}
		}
	}
	rec := ledger.CouponRequest{Kind: kindPlugin, RequestNo: p.OutRequestNo, Scope: p.StockID, State: ledger.RequestDone,
		Method: "PLUGIN", Path: "send-coupon", CreatedAt: stamp, UpdatedAt: stamp}
	_, err = h.deps.Store.PutIdempotent(ctx, &store.Put{Key: ledger.CouponRequestKey(kindPlugin, p.OutRequestNo), Value: rec}, digest, nil)
	if errors.Is(err, store.ErrConflict) {
		return apigw.Errorf(http.StatusConflict, CodeRequestNoReused, "out_request_no %s was already signed for a different coupon", p.OutRequestNo)
	}
	if err != nil {
		return fmt.Errorf("coupons: plugin: record out_request_no: %w", err)
	}
	return nil
}
