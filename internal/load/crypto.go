package load

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"time"
)

// CryptoCost is the measured CPU cost, on this machine, of the RSA
// operations the WeChat Pay APIv3 protocol requires of every call: the
// merchant signs each request (SHA256-RSA2048) and verifies the signature of
// each answer with the WeChat Pay public key. A JSAPI order also signs the
// client's paySign. These are mandated by the protocol, not choices of the
// handlers, so the report also gives the overhead with what is left of them
// on the critical path taken out (an estimate: calibrated cost × operations,
// not a per-request timing; see estimate).
type CryptoCost struct {
	Sign, Verify time.Duration // medians
}

// calibrateCrypto times n signatures with the merchant key and n
// verifications of a WeChat Pay signature with the platform public key, and
// returns the medians.
func calibrateCrypto(merchant, platform *rsa.PrivateKey, n int) (CryptoCost, error) {
	sum := sha256.Sum256([]byte("GET\n/v3/pay/transactions/out-trade-no/LOAD\n1795399200\nNONCE\n\n"))
	answer, err := rsa.SignPKCS1v15(rand.Reader, platform, crypto.SHA256, sum[:])
	if err != nil {
		return CryptoCost{}, fmt.Errorf("load: calibrate: %w", err)
	}
	signs, verifies := make([]time.Duration, n), make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		_, err := rsa.SignPKCS1v15(rand.Reader, merchant, crypto.SHA256, sum[:])
		signs[i] = time.Since(start)
		if err != nil {
			return CryptoCost{}, fmt.Errorf("load: calibrate sign: %w", err)
		}
		start = time.Now()
		err = rsa.VerifyPKCS1v15(&platform.PublicKey, crypto.SHA256, sum[:], answer)
		verifies[i] = time.Since(start)
		if err != nil {
			return CryptoCost{}, fmt.Errorf("load: calibrate verify: %w", err)
		}
	}
	return CryptoCost{Sign: Percentile(signs, 50), Verify: Percentile(verifies, 50)}, nil
}

// estimate is the protocol cryptography left on one handler invocation's
// critical path: the verification of each answer. The request signatures
// (wxpay.Client.Prepare) and a JSAPI order's paySign are computed while the
// handler waits on DynamoDB, so they are not part of its overhead unless
// they outlast that wait — which the overhead then shows.
func (c CryptoCost) estimate(s Sample) time.Duration {
	return time.Duration(s.WxCalls) * c.Verify
}
