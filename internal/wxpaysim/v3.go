package wxpaysim

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// maxBodyBytes bounds the request bodies the simulator reads.
const maxBodyBytes = 1 << 20

// RequestRecord is one /v3/ request as the simulator saw and answered it.
type RequestRecord struct {
	Time   time.Time // sim clock when it arrived
	Method string
	Path   string // RequestURI as received, query included
	MchID  string // from the Authorization header, even if it did not verify
	// Status is the HTTP status answered; 0 when the client went away
	// before an answer (KindDelay).
	Status       int
	Code         string // WeChat error code; "" on success
	Body         []byte // request body
	ResponseBody []byte
	RequestID    string
	Faults       []FaultKind // API faults that fired
}

// Requests returns every /v3/ request since New or Reset, oldest first.
func (s *Sim) Requests() []RequestRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// answer is the outcome of a /v3/ request before signing.
type answer struct {
	status    int
	code      string
	body      []byte
	abandoned bool // the client went away; write nothing
	// sigFault is KindBadResponseSignature or KindWrongResponseSerial.
	sigFault FaultKind
	faults   []FaultKind
	// raw is an unsigned byte stream of type contentType (bill downloads).
	raw         bool
	contentType string
}

// errorAnswer renders err as a WeChat error answer.
func errorAnswer(err error) answer {
	ae := errorsAsAPI(err)
	b, mErr := marshalJSON(errorBody{Code: ae.Code, Message: ae.Message})
	if mErr != nil {
		b = []byte(`{"code":"SYSTEM_ERROR","message":"系统错误"}`)
	}
	return answer{status: ae.Status, code: ae.Code, body: b}
}

// serveV3 authenticates, dispatches, signs and records one API request.
func (s *Sim) serveV3(w http.ResponseWriter, r *http.Request) {
	uri := r.RequestURI
	if !strings.HasPrefix(uri, "/") {
		uri = r.URL.RequestURI()
	}
	reqID, err := newRequestID()
	if err != nil {
		s.logf("wxpaysim: request id: %v", err)
	}
	rec := RequestRecord{Time: s.Now(), Method: r.Method, Path: uri, RequestID: reqID}
	body, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	rec.Body = body

	auth, authErr := wxsign.ParseAuthorization(r.Header.Get(wxsign.HeaderAuthorization))
	var m *merchant
	if authErr == nil {
		rec.MchID = auth.MchID
		m, _ = s.merchant(auth.MchID) // nil: unknown, rejected by process
	}
	ans := s.process(r.Context(), r, uri, body, readErr, auth, authErr, m)
	rec.Faults = ans.faults
	if ans.abandoned {
		s.record(rec)
		return
	}
	rec.Status, rec.Code, rec.ResponseBody = ans.status, ans.code, ans.body
	if ans.raw {
		s.record(rec)
		w.Header().Set(wxsign.HeaderRequestID, reqID)
		w.Header().Set("Content-Type", ans.contentType)
		w.WriteHeader(ans.status)
		_, _ = w.Write(ans.body)
		return
	}

	mode := ModeMixed
	if m != nil {
		mode = m.config().Mode
	}
	key, serial := s.responseKey(mode, m != nil, r.Header.Get(wxsign.HeaderSerial))
	switch ans.sigFault {
	case KindBadResponseSignature:
		key = s.otherKey(key)
	case KindWrongResponseSerial:
		serial = s.unknownSerial
	}
	nonce, err := wxsign.Nonce(rand.Reader)
	var h wxsign.SignatureHeaders
	if err == nil {
		h, err = wxsign.SignResponse(key, serial, s.Now().Unix(), nonce, ans.body)
	}
	if err != nil {
		s.logf("wxpaysim: sign response: %v", err)
		rec.Status, rec.Code = http.StatusInternalServerError, "SYSTEM_ERROR"
		s.record(rec)
		http.Error(w, "wxpaysim: cannot sign the response", http.StatusInternalServerError)
		return
	}
	s.record(rec)
	hd := w.Header()
	hd.Set(wxsign.HeaderRequestID, reqID)
	hd.Set(wxsign.HeaderTimestamp, h.Timestamp)
	hd.Set(wxsign.HeaderNonce, h.Nonce)
	hd.Set(wxsign.HeaderSignature, h.Signature)
	hd.Set(wxsign.HeaderSerial, h.Serial)
	if len(ans.body) > 0 {
		hd.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(ans.status)
	if len(ans.body) > 0 {
		_, _ = w.Write(ans.body)
	}
}

// process runs the protocol checks, the API faults and the handler.
func (s *Sim) process(ctx context.Context, r *http.Request, uri string, body []byte, readErr error,
	auth wxsign.Authorization, authErr error, m *merchant) answer {
	rt, params, ok := s.match(r.Method, r.URL.Path)
	if !ok {
		return errorAnswer(apiErr(http.StatusNotFound, "NOT_FOUND", "请求的资源不存在 (no route for %s %s)", r.Method, r.URL.Path))
	}
	if err := s.authenticate(r.Method, uri, body, auth, authErr, m); err != nil {
		return errorAnswer(err)
	}
	if err := checkBody(r.Method, body, readErr); err != nil {
		return errorAnswer(err)
	}

	var ans answer
	for _, f := range s.takeFaults(false, auth.MchID, r.URL.Path) {
		ans.faults = append(ans.faults, f.Kind)
		switch f.Kind {
		case KindDelay:
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				ans.abandoned = true
				return ans
			}
		case KindError:
			a := errorAnswer(errorFault(f))
			a.faults, a.sigFault = ans.faults, ans.sigFault
			return a
		case KindBadResponseSignature, KindWrongResponseSerial:
			ans.sigFault = f.Kind
		}
	}

	c := &call{m: m, mchID: auth.MchID, params: params, query: r.URL.Query(), body: body,
		requestSerial: r.Header.Get(wxsign.HeaderSerial)}
	rep, err := rt.handle(ctx, c)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			s.logf("wxpaysim: %s %s: %v", r.Method, uri, err)
		}
		a := errorAnswer(err)
		a.faults, a.sigFault = ans.faults, ans.sigFault
		return a
	}
	ans.status = rep.status
	if rep.raw != nil {
		ans.raw, ans.contentType, ans.body = true, rep.raw.contentType, rep.raw.data
		return ans
	}
	if rep.body != nil {
		b, err := marshalJSON(rep.body)
		if err != nil {
			s.logf("wxpaysim: %s %s: %v", r.Method, uri, err)
			a := errorAnswer(err)
			a.faults, a.sigFault = ans.faults, ans.sigFault
			return a
		}
		ans.body = b
	}
	return ans
}

// authenticate checks the Authorization header the way WeChat Pay does.
func (s *Sim) authenticate(method, uri string, body []byte, auth wxsign.Authorization, authErr error, m *merchant) error {
	if authErr != nil {
		return signError("Authorization请求头缺失或格式错误 (missing or malformed Authorization: %v)", authErr)
	}
	if m == nil {
		return signError("商户号不存在 (mchid %s is unknown to the simulator)", auth.MchID)
	}
	cfg := m.config()
	if auth.Serial != cfg.CertSerial {
		return signError("商户证书序列号有误 (serial_no %s is not the API certificate serial of merchant %s)", auth.Serial, cfg.MchID)
	}
	if err := auth.Verify(cfg.PublicKey, method, uri, body, s.Now()); err != nil {
		if errors.Is(err, wxsign.ErrStale) {
			return signError("签名时间戳已过期 (timestamp expired: %v, allowed ±5m)", err)
		}
		return signError("错误的签名，验签失败 (signature over %q does not verify: %v)", method+" "+uri, err)
	}
	return nil
}

// checkBody enforces the body rules: readable, UTF-8 without 4-byte
// characters, JSON on methods that carry one.
func checkBody(method string, body []byte, readErr error) error {
	if readErr != nil {
		return paramError("请求体无法读取 (body unreadable or over %d bytes: %v)", maxBodyBytes, readErr)
	}
	if !utf8.Valid(body) {
		return paramError("请求体不是合法的UTF-8 (body is not valid UTF-8)")
	}
	for _, r := range string(body) {
		if r > 0xFFFF {
			return paramError("不支持4字节的UTF-8字符 (body contains %U, a 4-byte UTF-8 character such as an emoji)", r)
		}
	}
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		if len(body) > 0 && !json.Valid(body) {
			return paramError("请求体不是合法的JSON (body is not valid JSON)")
		}
	}
	return nil
}

// responseKey chooses the platform key and serial a response is signed
// with. Unknown merchants get the public key unless the request named the
// platform certificate.
func (s *Sim) responseKey(mode Mode, known bool, requestSerial string) (*rsa.PrivateKey, string) {
	p := s.platform
	useCert := false
	switch {
	case !known:
		useCert = requestSerial == p.CertSerial
	case mode == ModeCertificate:
		useCert = true
	case mode == ModeMixed:
		useCert = requestSerial != p.PublicKeyID
	}
	if useCert {
		return p.CertKey, p.CertSerial
	}
	return p.Key, p.PublicKeyID
}

// notifyKey chooses the key notifications are signed with: the certificate
// in certificate mode, the public key otherwise (the gray release of the
// public key reaches callbacks at 100%).
func (s *Sim) notifyKey(mode Mode) (*rsa.PrivateKey, string) {
	if mode == ModeCertificate {
		return s.platform.CertKey, s.platform.CertSerial
	}
	return s.platform.Key, s.platform.PublicKeyID
}

// otherKey is "a wrong key": the platform key that key is not.
func (s *Sim) otherKey(key *rsa.PrivateKey) *rsa.PrivateKey {
	if key == s.platform.Key {
		return s.platform.CertKey
	}
	return s.platform.Key
}

func (s *Sim) record(rec RequestRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, rec)
}

// newRequestID returns an id shaped like WeChat Pay's:
// 38 upper-case hex digits, "-", a numeric code (0).
func newRequestID() (string, error) {
	id, err := randomString(38, "0123456789ABCDEF")
	if err != nil {
		return "", err
	}
	return id + "-0", nil
}
