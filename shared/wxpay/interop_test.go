package wxpay_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/wechatpay-apiv3/wechatpay-go/core"
	"github.com/wechatpay-apiv3/wechatpay-go/core/option"
	"github.com/wechatpay-apiv3/wechatpay-go/services/payments/native"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
)

// rewrite sends the official SDK's requests (hard-wired to
// api.mch.weixin.qq.com) to the simulator: the merchant signature covers the
// path and query, not the host, so nothing else changes.
type rewrite struct{ target *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rw.target.Scheme, rw.target.Host, rw.target.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestOfficialClientAgainstSimulator proves the simulator speaks the protocol
// a third-party client expects: wechatpay-go, configured the standard way,
// signs requests the simulator accepts and verifies the simulator's answers.
func TestOfficialClientAgainstSimulator(t *testing.T) {
	for _, mode := range []wxpaysim.Mode{wxpaysim.ModePublicKey, wxpaysim.ModeCertificate} {
		t.Run(string(mode), func(t *testing.T) {
			h := newHarness(t, mode, testkeys.SecretOptions{PublicKey: true, Certificates: true})
			target, _ := url.Parse(h.srv.URL)
			opts := []core.ClientOption{option.WithHTTPClient(&http.Client{Transport: rewrite{target}})}
			if mode == wxpaysim.ModePublicKey {
				opts = append(opts, option.WithWechatPayPublicKeyAuthCipher(h.m.MchID, h.m.CertSerial, h.m.Key, h.p.PublicKeyID, &h.p.Key.PublicKey))
			} else {
				opts = append(opts, option.WithMerchantCredential(h.m.MchID, h.m.CertSerial, h.m.Key), option.WithWechatPayCertificate([]*x509.Certificate{h.p.Cert}))
			}
			client, err := core.NewClient(context.Background(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			svc := native.NativeApiService{Client: client}
			resp, result, err := svc.Prepay(context.Background(), native.PrepayRequest{
				Appid: core.String(h.m.AppID), Mchid: core.String(h.m.MchID), Description: core.String("Image形象店-深圳腾大-QQ公仔"),
				OutTradeNo: core.String("SDK" + string(mode)[:3] + "0001"), NotifyUrl: core.String("https://www.weixin.qq.com/wxpay/pay.php"),
				Amount: &native.Amount{Total: core.Int64(551), Currency: core.String("CNY")},
			})
			if err != nil {
				t.Fatalf("official client prepay: %v", err)
			}
			if resp.CodeUrl == nil || *resp.CodeUrl == "" || result.Response.StatusCode != 200 {
				t.Fatalf("prepay = %+v", resp)
			}
			tx, _, err := svc.QueryOrderByOutTradeNo(context.Background(), native.QueryOrderByOutTradeNoRequest{
				OutTradeNo: core.String("SDK" + string(mode)[:3] + "0001"), Mchid: core.String(h.m.MchID)})
			if err != nil || tx.TradeState == nil || *tx.TradeState != "NOTPAY" {
				t.Fatalf("official client query = %+v, %v", tx, err)
			}
			_, _, err = svc.QueryOrderByOutTradeNo(context.Background(), native.QueryOrderByOutTradeNoRequest{
				OutTradeNo: core.String("MISSING0001"), Mchid: core.String(h.m.MchID)})
			var ae *core.APIError
			if !errors.As(err, &ae) || ae.StatusCode != 404 || ae.Code != "ORDER_NOT_EXIST" {
				t.Fatalf("official client 404 = %v", err)
			}
		})
	}
}
