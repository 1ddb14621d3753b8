package wxpaysim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

func TestAdminAPI(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, nil)

	t.Run("info", func(t *testing.T) {
		var info struct {
			PublicKeyID  string `json:"public_key_id"`
			PublicKeyPEM string `json:"public_key_pem"`
			CertSerial   string `json:"cert_serial"`
			CertPEM      string `json:"cert_pem"`
			Now          string `json:"now"`
			Merchants    []struct {
				MchID string        `json:"mchid"`
				Mode  wxpaysim.Mode `json:"mode"`
			} `json:"merchants"`
		}
		if status := f.admin(t, "GET", "/sim/info", nil, &info); status != 200 {
			t.Fatalf("GET /sim/info: got %d, want 200", status)
		}
		if info.PublicKeyID != f.p.PublicKeyID || info.CertSerial != f.p.CertSerial || info.PublicKeyPEM != string(f.p.PublicKeyPEM) ||
			info.CertPEM != string(f.p.CertPEM) || !strings.HasSuffix(info.Now, "+08:00") {
			t.Errorf("info: got %+v, want the platform ids, PEMs and a +08:00 time", info)
		}
		if len(info.Merchants) != 1 || info.Merchants[0].MchID != f.m.MchID || info.Merchants[0].Mode != wxpaysim.ModePublicKey {
			t.Errorf("info merchants: got %+v, want %s public_key", info.Merchants, f.m.MchID)
		}
	})

	t.Run("add merchant from its certificate, then use it", func(t *testing.T) {
		spec := wxpaysim.MerchantSpec{MchID: "1900000777", PublicKeyPEM: string(f.m.CertPEM), APIv3Key: f.m.APIv3Key,
			AppIDs: []string{f.m.AppID}, Mode: wxpaysim.ModeCertificate, NotifyURL: rc.URL()}
		if status := f.admin(t, "POST", "/sim/merchants", spec, nil); status != http.StatusCreated {
			t.Fatalf("POST /sim/merchants: got %d, want 201", status)
		}
		if status := f.admin(t, "POST", "/sim/merchants", spec, nil); status != http.StatusCreated {
			t.Errorf("POST the same merchant again: got %d, want 201 (idempotent)", status)
		}
		spec.Mode = wxpaysim.ModeMixed
		if status := f.admin(t, "POST", "/sim/merchants", spec, nil); status != http.StatusConflict {
			t.Errorf("POST a different config for the mchid: got %d, want 409", status)
		}
		r := f.call(t, "GET", "/v3/certificates", nil, func(s *signSpec) { s.MchID = "1900000777" })
		if r.Status != 200 || r.Header.Get(wxsign.HeaderSerial) != f.p.CertSerial {
			t.Errorf("GET /v3/certificates as the new merchant: got %d serial %s, want 200 signed by the certificate", r.Status, r.Header.Get(wxsign.HeaderSerial))
		}
		bad := []wxpaysim.MerchantSpec{
			{MchID: "1", PublicKeyPEM: "nope", APIv3Key: f.m.APIv3Key},
			{MchID: "2", PublicKeyPEM: string(f.m.CertPEM), APIv3Key: "short"},
			{MchID: "3", PublicKeyPEM: string(f.m.CertPEM), APIv3Key: f.m.APIv3Key, Mode: "gray"},
			{MchID: "4", PublicKeyPEM: string(f.p.PublicKeyPEM), APIv3Key: f.m.APIv3Key}, // no serial
		}
		for _, sp := range bad {
			if status := f.admin(t, "POST", "/sim/merchants", sp, nil); status != http.StatusBadRequest {
				t.Errorf("POST /sim/merchants %+v: got %d, want 400", sp, status)
			}
		}
		if status := f.admin(t, "PATCH", "/sim/merchants/1900000777", map[string]any{"mode": "public_key"}, nil); status != 200 {
			t.Errorf("PATCH mode: got %d, want 200", status)
		}
		if r := f.call(t, "GET", "/v3/certificates", nil, func(s *signSpec) { s.MchID = "1900000777" }); r.Status != 404 {
			t.Errorf("GET /v3/certificates after switching to public_key: got %d, want 404", r.Status)
		}
		for path, want := range map[string]int{"/sim/merchants/1999999999": 404, "/sim/merchants/1900000777": 400} {
			if status := f.admin(t, "PATCH", path, map[string]any{"mode": "gray"}, nil); status != want {
				t.Errorf("PATCH %s mode gray: got %d, want %d", path, status, want)
			}
		}
	})

	t.Run("faults", func(t *testing.T) {
		var out struct {
			Faults []map[string]any `json:"faults"`
		}
		if status := f.admin(t, "POST", "/sim/faults", map[string]any{"kind": "error", "status": 429, "count": 1}, &out); status != 201 || len(out.Faults) != 1 {
			t.Fatalf("POST /sim/faults: got %d %v, want 201 and one fault", status, out)
		}
		if status := f.admin(t, "POST", "/sim/faults", map[string]any{"kind": "explode"}, nil); status != 400 {
			t.Errorf("POST /sim/faults unknown kind: got %d, want 400", status)
		}
		r := f.call(t, "GET", "/v3/pay/transactions/out-trade-no/NOSUCH0001?mchid="+f.m.MchID, nil, nil)
		if r.Status != 429 || r.code() != "FREQUENCY_LIMITED" {
			t.Errorf("query under an admin fault: got %d %s, want 429 FREQUENCY_LIMITED", r.Status, r.Body)
		}
		f.admin(t, "POST", "/sim/faults", map[string]any{"kind": "delay", "delay_ms": 5}, nil)
		if f.admin(t, "GET", "/sim/faults", nil, &out); len(out.Faults) != 1 || out.Faults[0]["delay_ms"] != float64(5) {
			t.Errorf("GET /sim/faults: got %v, want the delay fault", out.Faults)
		}
		if status := f.admin(t, "DELETE", "/sim/faults", nil, &out); status != 200 || len(out.Faults) != 0 {
			t.Errorf("DELETE /sim/faults: got %d %v, want 200 and none", status, out.Faults)
		}
	})

	t.Run("send a notification", func(t *testing.T) {
		var out struct{ ID string }
		status := f.admin(t, "POST", "/sim/notifications", map[string]any{"mchid": f.m.MchID, "url": rc.URL(),
			"event_type": "COUPON.SEND", "original_type": "coupon", "summary": "商家券领券通知",
			"resource": map[string]any{"event_type": "EVENT_TYPE_BUSICOUPON_SEND", "coupon_code": "abc"}}, &out)
		if status != http.StatusAccepted || !strings.HasPrefix(out.ID, "EV-") {
			t.Fatalf("POST /sim/notifications: got %d %+v, want 202 with an id", status, out)
		}
		if err := wait(t, f.sim, out.ID); err != nil {
			t.Fatalf("WaitDelivered: %v", err)
		}
		got := rc.deliveries()
		last := got[len(got)-1]
		if last.VerifyErr != nil || string(last.Plain) != `{"coupon_code":"abc","event_type":"EVENT_TYPE_BUSICOUPON_SEND"}` {
			t.Errorf("received: got %s (%v), want the resource decrypted", last.Plain, last.VerifyErr)
		}
		var recs struct {
			Notifications []struct {
				NotificationID string `json:"notification_id"`
				Acked          bool   `json:"acked"`
			} `json:"notifications"`
		}
		f.admin(t, "GET", "/sim/notifications?id="+out.ID, nil, &recs)
		if len(recs.Notifications) != 1 || !recs.Notifications[0].Acked {
			t.Errorf("GET /sim/notifications?id=: got %+v, want one acked attempt", recs)
		}
		if status := f.admin(t, "POST", "/sim/notifications", map[string]any{"mchid": f.m.MchID, "url": rc.URL(),
			"event_type": "X", "resource": "text"}, nil); status != 400 {
			t.Errorf("POST /sim/notifications with a string resource: got %d, want 400", status)
		}
	})

	t.Run("clock", func(t *testing.T) {
		before := f.sim.Now()
		if status := f.admin(t, "POST", "/sim/clock/advance", map[string]any{"seconds": 3600}, nil); status != 200 {
			t.Fatalf("POST /sim/clock/advance: got %d, want 200", status)
		}
		if d := f.sim.Now().Sub(before); d < time.Hour || d > time.Hour+time.Minute {
			t.Errorf("clock moved: got %v, want 1h", d)
		}
		if status := f.admin(t, "POST", "/sim/clock/advance", map[string]any{"minutes": 1}, nil); status != 400 {
			t.Errorf("advance with an unknown field: got %d, want 400", status)
		}
	})

	t.Run("requests, reset and unknown endpoints", func(t *testing.T) {
		var recs struct {
			Requests []struct {
				Path   string `json:"path"`
				MchID  string `json:"mchid"`
				Status int    `json:"status"`
			} `json:"requests"`
		}
		f.admin(t, "GET", "/sim/requests?mchid=1900000777", nil, &recs)
		if len(recs.Requests) != 2 || recs.Requests[0].Path != "/v3/certificates" || recs.Requests[1].Status != 404 {
			t.Errorf("GET /sim/requests?mchid=: got %+v, want the two certificate requests", recs.Requests)
		}
		if status := f.admin(t, "POST", "/sim/reset", nil, nil); status != 200 {
			t.Errorf("POST /sim/reset: got %d, want 200", status)
		}
		if n := len(f.sim.Requests()) + len(f.sim.Deliveries()); n != 0 {
			t.Errorf("records after reset: got %d, want 0", n)
		}
		var info struct{ Merchants []any }
		if f.admin(t, "GET", "/sim/info", nil, &info); len(info.Merchants) != 2 {
			t.Errorf("merchants after reset: got %d, want 2 (kept)", len(info.Merchants))
		}
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/sim/", 200}, {"GET", "/sim/nope", 404}, {"GET", "/sim/reset", 405}, {"GET", "/other", 404},
			{"POST", "/sim/users/pay", 400},
		} {
			if status := f.admin(t, c.method, c.path, nil, nil); status != c.want {
				t.Errorf("%s %s: got %d, want %d", c.method, c.path, status, c.want)
			}
		}
	})
}
