package wxpaysim_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

func TestPrepayResponseSigning(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	f.addMerchant(t, "1900000201", wxpaysim.ModeCertificate, "")
	f.addMerchant(t, "1900000301", wxpaysim.ModeMixed, "")
	requestIDPattern := regexp.MustCompile(`^[0-9A-F]{38}-[0-9]+$`)
	tests := []struct {
		name         string
		mchID        string
		acceptSerial string
		wantSerial   string
	}{
		{"public key mode", f.m.MchID, "", f.p.PublicKeyID},
		{"public key mode ignores a certificate serial", f.m.MchID, f.p.CertSerial, f.p.PublicKeyID},
		{"certificate mode", "1900000201", "", f.p.CertSerial},
		{"certificate mode ignores the public key id", "1900000201", f.p.PublicKeyID, f.p.CertSerial},
		{"mixed follows the public key id", "1900000301", f.p.PublicKeyID, f.p.PublicKeyID},
		{"mixed follows a certificate serial", "1900000301", f.p.CertSerial, f.p.CertSerial},
		{"mixed without Wechatpay-Serial uses the certificate", "1900000301", "", f.p.CertSerial},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := prepayBody(f.m, fmt.Sprintf("SIGN%04d", i), 100, "https://merchant.example.com/notify")
			body["mchid"] = tc.mchID
			r := f.call(t, http.MethodPost, "/v3/pay/transactions/native", mustJSON(t, body), func(s *signSpec) {
				s.MchID, s.AcceptSerial = tc.mchID, tc.acceptSerial
			})
			if r.Status != http.StatusOK {
				t.Fatalf("native prepay as %s: got status %d body %s, want 200", tc.mchID, r.Status, r.Body)
			}
			var out struct {
				CodeURL string `json:"code_url"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil || !strings.HasPrefix(out.CodeURL, "weixin://wxpay/bizpayurl?pr=") {
				t.Errorf("native prepay body: got %s (%v), want a code_url weixin://wxpay/bizpayurl?pr=...", r.Body, err)
			}
			if got := r.Header.Get(wxsign.HeaderSerial); got != tc.wantSerial {
				t.Errorf("Wechatpay-Serial (request serial %q): got %q, want %q", tc.acceptSerial, got, tc.wantSerial)
			}
			if err := f.verify(r); err != nil {
				t.Errorf("response signature: got %v, want it to verify", err)
			}
			// Verify strictly with the expected key only.
			want := &f.p.Key.PublicKey
			if tc.wantSerial == f.p.CertSerial {
				want = &f.p.CertKey.PublicKey
			}
			msg := wxsign.ResponseMessage(r.Header.Get(wxsign.HeaderTimestamp), r.Header.Get(wxsign.HeaderNonce), r.Body)
			if err := wxsign.VerifySignature(want, msg, r.Header.Get(wxsign.HeaderSignature)); err != nil {
				t.Errorf("signature with the %s key: got %v, want nil", tc.wantSerial, err)
			}
			if got := r.Header.Get("Request-ID"); !requestIDPattern.MatchString(got) {
				t.Errorf("Request-ID: got %q, want 38 hex digits, '-', a number", got)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	other := f.p.CertKey // any key but the merchant's
	valid := mustJSON(t, prepayBody(f.m, "REJ000001", 1, "https://merchant.example.com/notify"))
	withDescription := func(d string) []byte {
		// Not json.Marshal: it would replace invalid UTF-8.
		return bytes.Replace(valid, []byte(`"description":"`), []byte(`"description":"`+d), 1)
	}
	noAuth := ""
	basicAuth := "Basic dXNlcjpwYXNz"
	tests := []struct {
		name       string
		method     string
		uri        string
		body       []byte
		edit       func(*signSpec)
		wantStatus int
		wantCode   string
	}{
		{"no Authorization", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Authorization = &noAuth }, 401, "SIGN_ERROR"},
		{"wrong scheme", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Authorization = &basicAuth }, 401, "SIGN_ERROR"},
		{"unknown mchid", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.MchID = "1999999999" }, 401, "SIGN_ERROR"},
		{"wrong serial", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1" }, 401, "SIGN_ERROR"},
		{"stale timestamp (6 min)", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Timestamp -= 360 }, 401, "SIGN_ERROR"},
		{"future timestamp (6 min)", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Timestamp += 360 }, 401, "SIGN_ERROR"},
		{"tampered body", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.SignedBody = []byte(`{"amount":{"total":100}}`) }, 401, "SIGN_ERROR"},
		{"wrong key", "POST", "/v3/pay/transactions/native", valid, func(s *signSpec) { s.Key = other }, 401, "SIGN_ERROR"},
		{"malformed JSON", "POST", "/v3/pay/transactions/native", []byte(`{"appid":`), nil, 400, "PARAM_ERROR"},
		{"emoji in body", "POST", "/v3/pay/transactions/native", withDescription("coffee ☕ and 😀"), nil, 400, "PARAM_ERROR"},
		{"3-byte characters are fine", "POST", "/v3/pay/transactions/native", bytes.Replace(withDescription("咖啡 ☕"), []byte("REJ000001"), []byte("REJ000002"), 1), nil, 200, ""},
		{"invalid UTF-8", "POST", "/v3/pay/transactions/native", withDescription("\xff"), nil, 400, "PARAM_ERROR"},
		{"unknown path", "GET", "/v3/no/such/api", nil, nil, 404, "NOT_FOUND"},
		{"wrong method", "DELETE", "/v3/pay/transactions/native", nil, nil, 404, "NOT_FOUND"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, tc.method, tc.uri, tc.body, tc.edit)
			if r.Status != tc.wantStatus || r.code() != tc.wantCode {
				t.Errorf("%s %s: got %d %s, want %d %s", tc.method, tc.uri, r.Status, r.Body, tc.wantStatus, tc.wantCode)
			}
			if err := f.verify(r); err != nil {
				t.Errorf("error response signature: got %v, want it to verify", err)
			}
			if r.Header.Get("Request-ID") == "" {
				t.Errorf("Request-ID: got none, want one")
			}
		})
	}

	t.Run("messages say why", func(t *testing.T) {
		tests := []struct {
			name string
			edit func(*signSpec)
			want string
		}{
			{"unknown mchid", func(s *signSpec) { s.MchID = "1999999999" }, "unknown"},
			{"stale", func(s *signSpec) { s.Timestamp -= 360 }, "expired"},
		}
		for _, tc := range tests {
			r := f.call(t, "POST", "/v3/pay/transactions/native", valid, tc.edit)
			var e struct{ Message string }
			_ = json.Unmarshal(r.Body, &e)
			if !regexp.MustCompile(tc.want).MatchString(e.Message) {
				t.Errorf("%s: got message %q, want it to contain %q", tc.name, e.Message, tc.want)
			}
		}
	})

	t.Run("records", func(t *testing.T) {
		recs := f.sim.Requests()
		if len(recs) == 0 {
			t.Fatalf("Requests(): got none, want every request")
		}
		last := recs[len(recs)-1]
		if last.Status != 401 || last.Code != "SIGN_ERROR" || last.Method != "POST" || last.Path != "/v3/pay/transactions/native" || last.RequestID == "" {
			t.Errorf("last record: got %+v, want POST /v3/pay/transactions/native 401 SIGN_ERROR with a request id", last)
		}
	})
}

func TestCertificates(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModeCertificate, "")
	f.addMerchant(t, "1900000301", wxpaysim.ModeMixed, "")
	f.addMerchant(t, "1900000401", wxpaysim.ModePublicKey, "")
	tests := []struct {
		name       string
		mchID      string
		wantStatus int
	}{
		{"certificate mode", f.m.MchID, 200},
		{"mixed mode", "1900000301", 200},
		{"public key mode", "1900000401", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, "GET", "/v3/certificates", nil, func(s *signSpec) { s.MchID = tc.mchID })
			if r.Status != tc.wantStatus {
				t.Fatalf("GET /v3/certificates as %s: got %d %s, want %d", tc.mchID, r.Status, r.Body, tc.wantStatus)
			}
			if err := f.verify(r); err != nil {
				t.Errorf("signature: got %v, want it to verify", err)
			}
			if tc.wantStatus != 200 {
				if r.code() != "NOT_FOUND" {
					t.Errorf("code: got %q, want NOT_FOUND", r.code())
				}
				return
			}
			var out struct {
				Data []struct {
					SerialNo           string          `json:"serial_no"`
					EffectiveTime      string          `json:"effective_time"`
					ExpireTime         string          `json:"expire_time"`
					EncryptCertificate wxsign.Resource `json:"encrypt_certificate"`
				} `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Data) != 1 {
				t.Fatalf("body: got %s (%v), want one certificate", r.Body, err)
			}
			d := out.Data[0]
			if d.EncryptCertificate.AssociatedData != "certificate" {
				t.Errorf("associated_data: got %q, want certificate", d.EncryptCertificate.AssociatedData)
			}
			if _, err := time.Parse(time.RFC3339, d.EffectiveTime); err != nil || !strings.HasSuffix(d.ExpireTime, "+08:00") {
				t.Errorf("times: got %q / %q, want RFC 3339 +08:00", d.EffectiveTime, d.ExpireTime)
			}
			plain, err := d.EncryptCertificate.Open([]byte(f.m.APIv3Key))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			blk, _ := pem.Decode(plain)
			if blk == nil {
				t.Fatalf("plaintext: got %q, want a PEM certificate", plain)
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatalf("ParseCertificate: %v", err)
			}
			if got := fmt.Sprintf("%X", cert.SerialNumber.Bytes()); got != f.sim.Platform().CertSerial || d.SerialNo != got {
				t.Errorf("serial: got cert %s, serial_no %s, want %s", got, d.SerialNo, f.sim.Platform().CertSerial)
			}
		})
	}
}

func TestClockAdvance(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	uri := "/v3/pay/transactions/out-trade-no/NOSUCHORDER?mchid=" + f.m.MchID
	realTime := func(s *signSpec) { s.Timestamp = time.Now().Unix() }
	before := f.sim.Now()
	f.sim.Advance(10 * time.Minute)
	if got := f.sim.Now().Sub(before); got < 10*time.Minute || got > 11*time.Minute {
		t.Errorf("Now() after Advance(10m): moved %v, want ~10m", got)
	}
	tests := []struct {
		name       string
		edit       func(*signSpec)
		wantStatus int
		wantCode   string
	}{
		{"signed at sim time", nil, 404, "ORDER_NOT_EXIST"},
		{"signed at real time", realTime, 401, "SIGN_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, "GET", uri, nil, tc.edit)
			if r.Status != tc.wantStatus || r.code() != tc.wantCode {
				t.Errorf("GET %s: got %d %s, want %d %s", uri, r.Status, r.Body, tc.wantStatus, tc.wantCode)
			}
			if ts := r.Header.Get(wxsign.HeaderTimestamp); ts != fmt.Sprint(f.sim.Now().Unix()) && ts != fmt.Sprint(f.sim.Now().Unix()-1) {
				t.Errorf("Wechatpay-Timestamp: got %s, want the sim clock %d", ts, f.sim.Now().Unix())
			}
		})
	}
	t.Run("fixed clock", func(t *testing.T) {
		fixed := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		g := newFixture(t, wxpaysim.Config{Now: func() time.Time { return fixed }, Platform: f.p}, wxpaysim.ModePublicKey, "")
		g.sim.Advance(90 * time.Second)
		if got, want := g.sim.Now(), fixed.Add(90*time.Second); !got.Equal(want) {
			t.Errorf("Now(): got %v, want %v", got, want)
		}
		r := g.call(t, "GET", "/v3/pay/transactions/out-trade-no/NOSUCHORDER?mchid="+g.m.MchID, nil, nil)
		if r.Status != 404 || r.Header.Get(wxsign.HeaderTimestamp) != fmt.Sprint(fixed.Unix()+90) {
			t.Errorf("query at fixed time: got %d ts %s, want 404 ts %d", r.Status, r.Header.Get(wxsign.HeaderTimestamp), fixed.Unix()+90)
		}
	})
}

func TestAPIFaults(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	f.addMerchant(t, "1900000202", wxpaysim.ModePublicKey, "")
	uri := "/v3/pay/transactions/out-trade-no/NOSUCHORDER?mchid=" + f.m.MchID
	query := func(t *testing.T) result { return f.call(t, "GET", uri, nil, nil) }

	t.Run("error once then success", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Count: 1})
		r1, r2 := query(t), query(t)
		if r1.Status != 500 || r1.code() != "SYSTEM_ERROR" {
			t.Errorf("first: got %d %s, want 500 SYSTEM_ERROR", r1.Status, r1.Body)
		}
		if err := f.verify(r1); err != nil {
			t.Errorf("fault answer signature: got %v, want it to verify", err)
		}
		if r2.Status != 404 || r2.code() != "ORDER_NOT_EXIST" {
			t.Errorf("second: got %d %s, want 404 ORDER_NOT_EXIST", r2.Status, r2.Body)
		}
	})

	t.Run("every third request, twice", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Every: 3, Count: 2})
		var got []int
		for range 8 {
			got = append(got, query(t).Status)
		}
		want := []int{404, 404, 500, 404, 404, 500, 404, 404}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("eight queries with Every 3, Count 2: got %v, want %v", got, want)
		}
		if n := len(f.sim.Faults()); n != 0 {
			t.Errorf("%d faults left after two firings, want 0", n)
		}
	})

	t.Run("count honoured and faults recorded", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Status: 429, Count: 2})
		var got []string
		for range 3 {
			r := query(t)
			got = append(got, fmt.Sprintf("%d %s", r.Status, r.code()))
		}
		want := []string{"429 FREQUENCY_LIMITED", "429 FREQUENCY_LIMITED", "404 ORDER_NOT_EXIST"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("three queries with Count 2: got %v, want %v", got, want)
		}
		recs := f.sim.Requests()
		last3 := recs[len(recs)-3:]
		if len(last3[0].Faults) != 1 || last3[0].Faults[0] != wxpaysim.KindError || len(last3[2].Faults) != 0 {
			t.Errorf("record faults: got %v %v %v, want [error] [error] []", last3[0].Faults, last3[1].Faults, last3[2].Faults)
		}
		if n := len(f.sim.Faults()); n != 0 {
			t.Errorf("Faults() after the count ran out: got %d, want 0", n)
		}
	})

	t.Run("custom status and code, until cleared", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, Status: 503, Code: "SYSTEM_ERROR"})
		for i := range 3 {
			if r := query(t); r.Status != 503 {
				t.Errorf("query %d with an unlimited fault: got %d, want 503", i, r.Status)
			}
		}
		f.sim.ClearFaults()
		if r := query(t); r.Status != 404 {
			t.Errorf("after ClearFaults: got %d, want 404", r.Status)
		}
	})

	t.Run("filters", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, MchID: "1900000202"})
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindError, PathPrefix: "/v3/certificates", Status: 500})
		defer f.sim.ClearFaults()
		tests := []struct {
			name   string
			mchID  string
			uri    string
			status int
		}{
			{"other merchant", "1900000202", "/v3/pay/transactions/out-trade-no/X123456?mchid=1900000202", 500},
			{"this merchant, other path", f.m.MchID, uri, 404},
			{"this merchant, faulty path", f.m.MchID, "/v3/certificates", 500},
		}
		for _, tc := range tests {
			r := f.call(t, "GET", tc.uri, nil, func(s *signSpec) { s.MchID = tc.mchID })
			if r.Status != tc.status {
				t.Errorf("%s: GET %s as %s: got %d, want %d", tc.name, tc.uri, tc.mchID, r.Status, tc.status)
			}
		}
	})

	t.Run("delay respects the request context", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindDelay, Delay: time.Minute, Count: 1})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := f.try(ctx, "GET", uri, nil, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("delayed query with a 100ms deadline: got %v, want DeadlineExceeded", err)
		}
		waitFor(t, "the delayed request to be recorded", func() bool {
			recs := f.sim.Requests()
			last := recs[len(recs)-1]
			return len(last.Faults) == 1 && last.Faults[0] == wxpaysim.KindDelay && last.Status == 0
		})
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("delayed handler returned after %v, want it to stop when the client left", el)
		}
	})

	t.Run("delay then answer", func(t *testing.T) {
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindDelay, Delay: 50 * time.Millisecond, Count: 1})
		start := time.Now()
		r := query(t)
		if el := time.Since(start); r.Status != 404 || el < 50*time.Millisecond {
			t.Errorf("delayed query: got %d after %v, want 404 after >= 50ms", r.Status, el)
		}
	})

	t.Run("bad response signatures", func(t *testing.T) {
		tests := []struct {
			kind    wxpaysim.FaultKind
			wantErr error
		}{
			{wxpaysim.KindBadResponseSignature, wxsign.ErrBadSignature},
			{wxpaysim.KindWrongResponseSerial, wxsign.ErrUnknownSerial},
		}
		for _, tc := range tests {
			f.sim.SetFault(wxpaysim.Fault{Kind: tc.kind, Count: 1})
			r1, r2 := query(t), query(t)
			if err := f.verify(r1); !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: verify: got %v, want %v", tc.kind, err, tc.wantErr)
			}
			if r1.Status != 404 {
				t.Errorf("%s: status: got %d, want the handler's 404", tc.kind, r1.Status)
			}
			if err := f.verify(r2); err != nil {
				t.Errorf("%s: next response: got %v, want it to verify", tc.kind, err)
			}
		}
	})
}
