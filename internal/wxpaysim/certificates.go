package wxpaysim

import (
	"context"
	"net/http"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// certificateRoutes is the platform certificate download.
func (s *Sim) certificateRoutes() []route {
	return []route{
		{method: http.MethodGet, pattern: "/v3/certificates", handle: s.getCertificates},
	}
}

type certificatesJSON struct {
	Data []certificateJSON `json:"data"`
}

type certificateJSON struct {
	SerialNo           string          `json:"serial_no"`
	EffectiveTime      string          `json:"effective_time"`
	ExpireTime         string          `json:"expire_time"`
	EncryptCertificate wxsign.Resource `json:"encrypt_certificate"`
}

// getCertificates answers GET /v3/certificates: the platform certificate
// sealed with the merchant's APIv3 key, or 404 for public-key merchants.
func (s *Sim) getCertificates(_ context.Context, c *call) (reply, error) {
	cfg := c.m.config()
	if cfg.Mode == ModePublicKey {
		return reply{}, apiErr(http.StatusNotFound, "NOT_FOUND",
			"无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可查看指引https://pay.weixin.qq.com/doc/v3/merchant/4012153196")
	}
	nonce, err := resourceNonce()
	if err != nil {
		return reply{}, err
	}
	res, err := wxsign.Seal([]byte(cfg.APIv3Key), nonce, "certificate", "", s.platform.CertPEM)
	if err != nil {
		return reply{}, err
	}
	cert := s.platform.Cert
	item := certificateJSON{SerialNo: s.platform.CertSerial, EncryptCertificate: res}
	if cert != nil {
		item.EffectiveTime, item.ExpireTime = formatTime(cert.NotBefore), formatTime(cert.NotAfter)
	}
	return reply{status: http.StatusOK, body: certificatesJSON{Data: []certificateJSON{item}}}, nil
}
