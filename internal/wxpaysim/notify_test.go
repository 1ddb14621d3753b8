package wxpaysim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/internal/wxpaysim"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// note is a small notification for mchID to url.
func note(mchID, url, summary string) wxpaysim.Notification {
	return wxpaysim.Notification{MchID: mchID, URL: url, EventType: "TRANSACTION.SUCCESS", OriginalType: "transaction",
		Summary: summary, Plaintext: []byte(`{"out_trade_no":"` + summary + `"}`)}
}

func TestRetrySchedule(t *testing.T) {
	const scale = 0.002 // 15 s -> 30 ms
	f := newFixture(t, wxpaysim.Config{TimeScale: scale}, wxpaysim.ModePublicKey, "")

	t.Run("500 twice then 204", func(t *testing.T) {
		rc := newReceiver(t, f, func(n int, _ error) int {
			if n < 2 {
				return http.StatusInternalServerError
			}
			return http.StatusNoContent
		})
		id, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "retry"))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if err := wait(t, f.sim, id); err != nil {
			t.Fatalf("WaitDelivered: got %v, want nil", err)
		}
		recs := f.sim.Deliveries()
		var statuses []int
		for i, d := range recs {
			statuses = append(statuses, d.Status)
			if d.NotificationID != id || d.Attempt != i+1 || d.Copy != 1 || d.URL != rc.URL() || d.EventType != "TRANSACTION.SUCCESS" {
				t.Errorf("record %d: got %+v, want attempt %d of %s", i, d, i+1, id)
			}
		}
		if len(recs) != 3 || statuses[0] != 500 || statuses[1] != 500 || statuses[2] != 204 || !recs[2].Acked || recs[1].Acked {
			t.Fatalf("attempts: got statuses %v, want [500 500 204], only the last acked", statuses)
		}
		got := rc.deliveries()
		for i, d := range got {
			if d.ID != id || d.VerifyErr != nil {
				t.Errorf("received %d: got id %s err %v, want %s verified", i, d.ID, d.VerifyErr, id)
			}
			if i > 0 && d.Header.Get(wxsign.HeaderNonce) == got[i-1].Header.Get(wxsign.HeaderNonce) {
				t.Errorf("received %d: nonce reused, want a fresh signature per attempt", i)
			}
			if i > 0 && string(d.Body) != string(got[0].Body) {
				t.Errorf("received %d: body changed between attempts: got %s, want %s", i, d.Body, got[0].Body)
			}
		}
		for i, want := range []time.Duration{15 * time.Second, 15 * time.Second} {
			least := time.Duration(float64(want) * scale)
			gap := recs[i+1].Elapsed - recs[i].Elapsed
			if gap < least || gap > least+time.Second {
				t.Errorf("gap before attempt %d: got %v, want >= %v (%v scaled) and not much more", i+2, gap, least, want)
			}
		}
	})

	t.Run("gives up after 16 attempts", func(t *testing.T) {
		g := newFixture(t, wxpaysim.Config{TimeScale: 1e-6, Platform: f.p}, wxpaysim.ModePublicKey, "")
		rc := newReceiver(t, g, func(int, error) int { return http.StatusServiceUnavailable })
		id, err := g.sim.Notify(t.Context(), note(g.m.MchID, rc.URL(), "giveup"))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if err := wait(t, g.sim, id); !errors.Is(err, wxpaysim.ErrGaveUp) {
			t.Fatalf("WaitDelivered on an always-503 receiver: got %v, want ErrGaveUp", err)
		}
		recs := g.sim.Deliveries()
		if len(recs) != wxpaysim.MaxDeliveryAttempts || len(rc.deliveries()) != 16 {
			t.Fatalf("attempts: got %d recorded, %d received, want 16", len(recs), len(rc.deliveries()))
		}
		if last := recs[15]; last.Attempt != 16 || last.Status != 503 || last.Acked {
			t.Errorf("last attempt: got %+v, want attempt 16, 503, not acked", last)
		}
	})

	t.Run("connection errors are retried", func(t *testing.T) {
		g := newFixture(t, wxpaysim.Config{TimeScale: 1e-6, Platform: f.p}, wxpaysim.ModePublicKey, "")
		rc := newReceiver(t, g, nil)
		url := rc.URL()
		rc.srv.Close()
		id, err := g.sim.Notify(t.Context(), note(g.m.MchID, url, "refused"))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if err := wait(t, g.sim, id); !errors.Is(err, wxpaysim.ErrGaveUp) {
			t.Fatalf("WaitDelivered to a closed server: got %v, want ErrGaveUp", err)
		}
		recs := g.sim.Deliveries()
		if len(recs) != 16 || recs[0].Status != 0 || recs[0].Err == "" {
			t.Errorf("attempts: got %d, first %+v, want 16 with status 0 and an error", len(recs), recs[0])
		}
	})

	t.Run("slow receiver times out", func(t *testing.T) {
		// The first attempt is held for 2 s; a loaded CI machine may make
		// a later one slow too, so only the shape is required: timed-out
		// attempts, then one acknowledged.
		client := &http.Client{Timeout: 250 * time.Millisecond}
		g := newFixture(t, wxpaysim.Config{TimeScale: 1e-6, Platform: f.p, HTTPClient: client}, wxpaysim.ModePublicKey, "")
		release := make(chan struct{})
		rc := newReceiver(t, g, nil)
		rc.hold = func(n int) {
			if n == 0 {
				select {
				case <-release:
				case <-time.After(2 * time.Second):
				}
			}
		}
		id, err := g.sim.Notify(t.Context(), note(g.m.MchID, rc.URL(), "slow"))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		err = wait(t, g.sim, id)
		close(release)
		if err != nil {
			t.Fatalf("WaitDelivered: got %v, want nil after a retry", err)
		}
		recs := g.sim.Deliveries()
		ok := len(recs) >= 2 && recs[len(recs)-1].Acked
		for _, r := range recs[:max(len(recs)-1, 0)] {
			ok = ok && r.Err != "" && !r.Acked
		}
		if !ok {
			t.Errorf("attempts: got %+v, want timed-out attempts then an acked one", recs)
		}
	})
}

func TestNotificationFaults(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModePublicKey, "")
	type check func(t *testing.T, rc *receiver, ids []string)
	tests := []struct {
		kind  wxpaysim.FaultKind
		hold  func(rc *receiver) func(n int)
		count int // notifications sent
		check check
	}{
		{kind: wxpaysim.KindNotifyDuplicate, count: 1, check: func(t *testing.T, rc *receiver, ids []string) {
			got := rc.deliveries()
			if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[0] || got[0].VerifyErr != nil || got[1].VerifyErr != nil {
				t.Fatalf("received: got %d (%v), want the same verified id twice", len(got), got)
			}
			if got := rc.concurrency(); got != 1 {
				t.Errorf("in flight at once: got %d, want 1 (sequential)", got)
			}
			recs := f.sim.Deliveries()
			if len(recs) != 2 || recs[0].Duplicate || !recs[1].Duplicate || recs[1].Copy != 2 {
				t.Errorf("records: got %+v, want copy 1 then a duplicate copy 2", recs)
			}
		}},
		{kind: wxpaysim.KindNotifyDuplicateConcurrent, count: 1,
			hold: func(rc *receiver) func(n int) {
				both := make(chan struct{})
				var once sync.Once
				return func(n int) {
					if n == 1 {
						once.Do(func() { close(both) })
					}
					select { // the first waits for the second: they overlap
					case <-both:
					case <-time.After(2 * time.Second):
					}
				}
			},
			check: func(t *testing.T, rc *receiver, ids []string) {
				got := rc.deliveries()
				if len(got) != 2 || got[0].ID != ids[0] || got[1].ID != ids[0] {
					t.Fatalf("received: got %d, want the same id twice", len(got))
				}
				if got := rc.concurrency(); got != 2 {
					t.Errorf("in flight at once: got %d, want 2 (concurrent)", got)
				}
			}},
		{kind: wxpaysim.KindNotifyOutOfOrder, count: 2, check: func(t *testing.T, rc *receiver, ids []string) {
			got := rc.deliveries()
			if len(got) != 2 || got[0].ID != ids[1] || got[1].ID != ids[0] {
				var order []string
				for _, d := range got {
					order = append(order, d.ID)
				}
				t.Errorf("arrival order: got %v, want [%s %s] (the second queued first)", order, ids[1], ids[0])
			}
		}},
		{kind: wxpaysim.KindNotifyStaleTimestamp, count: 1, check: func(t *testing.T, rc *receiver, ids []string) {
			got := firstThenValid(t, rc, wxsign.ErrStale)
			ts, _ := strconv.ParseInt(got[0].Header.Get(wxsign.HeaderTimestamp), 10, 64)
			if age := f.sim.Now().Unix() - ts; age < 599 || age > 610 {
				t.Errorf("first timestamp age: got %ds, want ~600s", age)
			}
			// The signature over the old timestamp is itself correct.
			msg := wxsign.ResponseMessage(got[0].Header.Get(wxsign.HeaderTimestamp), got[0].Header.Get(wxsign.HeaderNonce), got[0].Body)
			if err := wxsign.VerifySignature(&f.p.Key.PublicKey, msg, got[0].Header.Get(wxsign.HeaderSignature)); err != nil {
				t.Errorf("stale signature: got %v, want a valid signature over the stale timestamp", err)
			}
		}},
		{kind: wxpaysim.KindNotifySignTest, count: 1, check: func(t *testing.T, rc *receiver, ids []string) {
			got := firstThenValid(t, rc, wxsign.ErrSignTest)
			if sig := got[0].Header.Get(wxsign.HeaderSignature); !strings.HasPrefix(sig, "WECHATPAY/SIGNTEST/") {
				t.Errorf("first signature: got %q, want the WECHATPAY/SIGNTEST/ prefix", sig)
			}
		}},
		{kind: wxpaysim.KindNotifyWrongSerial, count: 1, check: func(t *testing.T, rc *receiver, ids []string) {
			got := firstThenValid(t, rc, wxsign.ErrUnknownSerial)
			if s := got[0].Header.Get(wxsign.HeaderSerial); s == f.p.PublicKeyID || s == f.p.CertSerial {
				t.Errorf("first serial: got %q, want an unknown one", s)
			}
		}},
		{kind: wxpaysim.KindNotifyTamperedBody, count: 1, check: func(t *testing.T, rc *receiver, ids []string) {
			got := firstThenValid(t, rc, wxsign.ErrBadSignature)
			var env struct{ ID, Summary string }
			if err := json.Unmarshal(got[0].Body, &env); err != nil || env.ID != ids[0] || !strings.Contains(env.Summary, "tampered") {
				t.Errorf("tampered body: got %s (%v), want valid JSON with a changed summary", got[0].Body, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			f.sim.Reset()
			rc := newReceiver(t, f, nil)
			if tc.hold != nil {
				rc.hold = tc.hold(rc)
			}
			f.sim.SetFault(wxpaysim.Fault{Kind: tc.kind, Count: 1})
			var ids []string
			for i := range tc.count {
				id, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "n"+strconv.Itoa(i)))
				if err != nil {
					t.Fatalf("Notify %d: %v", i, err)
				}
				ids = append(ids, id)
			}
			for _, id := range ids {
				if err := wait(t, f.sim, id); err != nil {
					t.Fatalf("WaitDelivered(%s) with %s: got %v, want nil", id, tc.kind, err)
				}
			}
			tc.check(t, rc, ids)
			if n := len(f.sim.Faults()); n != 0 {
				t.Errorf("Faults() after one firing of Count 1: got %d, want 0", n)
			}
		})
	}

	t.Run("filters", func(t *testing.T) {
		f.sim.Reset()
		f.addMerchant(t, "1900000202", wxpaysim.ModePublicKey, "")
		rc := newReceiver(t, f, nil)
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindNotifySignTest, MchID: "1900000202"})
		f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindNotifySignTest, PathPrefix: "REFUND."})
		id, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "unaffected"))
		if err != nil {
			t.Fatalf("Notify: %v", err)
		}
		if err := wait(t, f.sim, id); err != nil {
			t.Fatalf("WaitDelivered: %v", err)
		}
		if got := rc.deliveries(); len(got) != 1 || got[0].VerifyErr != nil {
			t.Errorf("TRANSACTION.SUCCESS for %s with faults for another merchant and REFUND.*: got %d deliveries, want 1 clean", f.m.MchID, len(got))
		}
		if n := len(f.sim.Faults()); n != 2 {
			t.Errorf("Faults(): got %d, want the 2 unlimited faults still set", n)
		}
		f.sim.ClearFaults()
	})
}

// firstThenValid checks that the first attempt failed verification with
// want and the retry verified.
func firstThenValid(t *testing.T, rc *receiver, want error) []delivery {
	t.Helper()
	got := rc.deliveries()
	if len(got) != 2 {
		t.Fatalf("received: got %d notifications, want 2 (a corrupted one, then a valid retry)", len(got))
	}
	if !errors.Is(got[0].VerifyErr, want) {
		t.Errorf("first attempt verify: got %v, want %v", got[0].VerifyErr, want)
	}
	if got[1].VerifyErr != nil || got[1].ID != got[0].ID {
		t.Errorf("retry: got id %s err %v, want id %s verified", got[1].ID, got[1].VerifyErr, got[0].ID)
	}
	return got
}

func TestNotificationKeysFollowMode(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{TimeScale: 0.001}, wxpaysim.ModeCertificate, "")
	rc := newReceiver(t, f, nil)
	tests := []struct {
		mode       wxpaysim.Mode
		wantSerial string
	}{
		{wxpaysim.ModeCertificate, f.p.CertSerial},
		{wxpaysim.ModeMixed, f.p.PublicKeyID},
		{wxpaysim.ModePublicKey, f.p.PublicKeyID},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			if status := f.admin(t, "PATCH", "/sim/merchants/"+f.m.MchID, map[string]any{"mode": tc.mode}, nil); status != 200 {
				t.Fatalf("PATCH mode %s: got %d, want 200", tc.mode, status)
			}
			before := len(rc.deliveries())
			id, err := f.sim.Notify(t.Context(), wxpaysim.Notification{MchID: f.m.MchID, EventType: "TRANSACTION.SUCCESS",
				OriginalType: "transaction", URL: rc.URL(), Plaintext: []byte(`{}`)})
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			if err := wait(t, f.sim, id); err != nil {
				t.Fatalf("WaitDelivered: %v", err)
			}
			d := rc.deliveries()[before]
			if got := d.Header.Get(wxsign.HeaderSerial); got != tc.wantSerial || d.VerifyErr != nil {
				t.Errorf("mode %s: got serial %s verify %v, want %s verified", tc.mode, got, d.VerifyErr, tc.wantSerial)
			}
		})
	}
}

func TestNotifyErrorsAndClose(t *testing.T) {
	f := newFixture(t, wxpaysim.Config{}, wxpaysim.ModePublicKey, "")
	rc := newReceiver(t, f, func(int, error) int { return http.StatusInternalServerError })
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		n    wxpaysim.Notification
		want error
	}{
		{"unknown merchant", t.Context(), note("1999999999", rc.URL(), "x"), wxpaysim.ErrUnknownMerchant},
		{"no URL anywhere", t.Context(), note(f.m.MchID, "", "x"), wxpaysim.ErrInvalid},
		{"no event type", t.Context(), wxpaysim.Notification{MchID: f.m.MchID, URL: rc.URL(), Plaintext: []byte(`{}`)}, wxpaysim.ErrInvalid},
		{"plaintext not JSON", t.Context(), wxpaysim.Notification{MchID: f.m.MchID, URL: rc.URL(), EventType: "X", Plaintext: []byte(`{`)}, wxpaysim.ErrInvalid},
		{"canceled context", canceled, note(f.m.MchID, rc.URL(), "x"), context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.sim.Notify(tc.ctx, tc.n); !errors.Is(err, tc.want) {
				t.Errorf("Notify(%+v): got %v, want %v", tc.n, err, tc.want)
			}
		})
	}
	if err := f.sim.WaitDelivered(t.Context(), "EV-0000"); !errors.Is(err, wxpaysim.ErrUnknownNotification) {
		t.Errorf("WaitDelivered(unknown): got %v, want ErrUnknownNotification", err)
	}

	// Real-time schedule: after the first 500 the retry is 15 s away; Close
	// must cancel it and return promptly.
	id, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "pending"))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	f.sim.SetFault(wxpaysim.Fault{Kind: wxpaysim.KindNotifyOutOfOrder, Count: 1})
	held, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "held"))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	waitFor(t, "the first attempt", func() bool { return len(f.sim.Deliveries()) == 1 })
	start := time.Now()
	f.sim.Close()
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close with a pending retry: took %v, want prompt", el)
	}
	for _, id := range []string{id, held} {
		if err := f.sim.WaitDelivered(t.Context(), id); !errors.Is(err, wxpaysim.ErrCanceled) {
			t.Errorf("WaitDelivered(%s) after Close: got %v, want ErrCanceled", id, err)
		}
	}
	if _, err := f.sim.Notify(t.Context(), note(f.m.MchID, rc.URL(), "late")); !errors.Is(err, wxpaysim.ErrClosed) {
		t.Errorf("Notify after Close: got %v, want ErrClosed", err)
	}
	if n := len(f.sim.Deliveries()); n != 1 {
		t.Errorf("deliveries after Close: got %d, want 1", n)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	m, err := testkeys.NewMerchant("1900000109")
	if err != nil {
		t.Fatalf("NewMerchant: %v", err)
	}
	p, err := testkeys.NewPlatform()
	if err != nil {
		t.Fatalf("NewPlatform: %v", err)
	}
	var calls sync.Mutex
	n := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Lock()
		n++
		first := n == 1
		calls.Unlock()
		if first {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusInternalServerError) // the rest wait 15 s for a retry
	}))
	defer recv.Close()
	before := runtime.NumGoroutine()

	sim, err := wxpaysim.New(wxpaysim.Config{Platform: p})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := sim.AddMerchant(wxpaysim.MerchantFromTestKeys(m, wxpaysim.ModePublicKey, recv.URL+"/notify")); err != nil {
		t.Fatalf("AddMerchant: %v", err)
	}
	acked, err := sim.Notify(t.Context(), note(m.MchID, "", "acked"))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if err := wait(t, sim, acked); err != nil {
		t.Fatalf("WaitDelivered: %v", err)
	}
	pending, err := sim.Notify(t.Context(), note(m.MchID, "", "pending"))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	waitFor(t, "the failed first attempt", func() bool { return len(sim.Deliveries()) == 2 })
	sim.Close()
	if err := sim.WaitDelivered(t.Context(), pending); !errors.Is(err, wxpaysim.ErrCanceled) {
		t.Errorf("WaitDelivered(pending) after Close: got %v, want ErrCanceled", err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines after Close: got %d, want <= %d (before New)\n%s", runtime.NumGoroutine(), before,
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
