package wxpaysim

import (
	"net/http"
	"strings"
	"time"
)

// FaultKind names an injected fault.
type FaultKind string

// API fault kinds: they fire on authenticated /v3/ requests whose mchid and
// path match.
const (
	// KindError answers Fault.Status / Fault.Code (default 500 SYSTEM_ERROR)
	// without running the handler.
	KindError FaultKind = "error"
	// KindDelay waits Fault.Delay (or until the request context ends) before
	// handling the request.
	KindDelay FaultKind = "delay"
	// KindBadResponseSignature runs the handler but signs the response with
	// a key that is not the one its Wechatpay-Serial names.
	KindBadResponseSignature FaultKind = "bad_response_signature"
	// KindWrongResponseSerial runs the handler and signs correctly, but the
	// Wechatpay-Serial header names a key nobody knows.
	KindWrongResponseSerial FaultKind = "wrong_response_serial"
)

// Notification fault kinds: they apply to the next Fault.Count
// notifications of the merchant whose event_type starts with
// Fault.PathPrefix. The corrupting kinds (stale, SIGNTEST, wrong serial,
// tampered) corrupt only the first attempt; WeChat's retries are clean.
const (
	// KindNotifyDuplicate delivers the notification a second time after the
	// first copy was acknowledged (same id and body, fresh signature).
	KindNotifyDuplicate FaultKind = "notify_duplicate"
	// KindNotifyDuplicateConcurrent delivers two copies at the same time.
	KindNotifyDuplicateConcurrent FaultKind = "notify_duplicate_concurrent"
	// KindNotifyOutOfOrder holds the notification until the merchant's next
	// notification has had its first delivery attempt.
	KindNotifyOutOfOrder FaultKind = "notify_out_of_order"
	// KindNotifyStaleTimestamp signs the first attempt with a timestamp 10
	// minutes old (the signature over it is correct).
	KindNotifyStaleTimestamp FaultKind = "notify_stale_timestamp"
	// KindNotifySignTest sends a WECHATPAY/SIGNTEST/ probe signature on the
	// first attempt.
	KindNotifySignTest FaultKind = "notify_signtest"
	// KindNotifyWrongSerial signs the first attempt correctly but names an
	// unknown key in Wechatpay-Serial.
	KindNotifyWrongSerial FaultKind = "notify_wrong_serial"
	// KindNotifyTamperedBody changes the summary after signing the first
	// attempt (the body stays valid JSON).
	KindNotifyTamperedBody FaultKind = "notify_tampered_body"
)

// FaultKinds lists every kind, API kinds first.
func FaultKinds() []FaultKind {
	return []FaultKind{KindError, KindDelay, KindBadResponseSignature, KindWrongResponseSerial,
		KindNotifyDuplicate, KindNotifyDuplicateConcurrent, KindNotifyOutOfOrder, KindNotifyStaleTimestamp,
		KindNotifySignTest, KindNotifyWrongSerial, KindNotifyTamperedBody}
}

// Valid reports whether k is a known kind.
func (k FaultKind) Valid() bool {
	for _, v := range FaultKinds() {
		if k == v {
			return true
		}
	}
	return false
}

// notification reports whether k applies to notifications.
func (k FaultKind) notification() bool { return strings.HasPrefix(string(k), "notify_") }

// Fault is an injected failure.
type Fault struct {
	// MchID limits the fault to one merchant; "" means all.
	MchID string
	// PathPrefix limits API faults to request paths, and notification
	// faults to event types, starting with it; "" means all.
	PathPrefix string
	Kind       FaultKind
	// Count is how many times the fault fires; 0 means until cleared.
	Count int
	// Every makes the fault fire on one matching request in Every (the
	// Every-th, 2*Every-th, ...); 0 or 1 fires on each. Count counts
	// firings, not matches.
	Every int
	// Status and Code are the KindError answer (default 500 SYSTEM_ERROR).
	Status int
	Code   string
	// Delay is the KindDelay wait.
	Delay time.Duration
}

// faultState is a set fault and how often it may still fire.
type faultState struct {
	f         Fault
	remaining int // 0: unlimited
	seen      int // matching requests so far (for Every)
}

// SetFault adds f. Faults fire in the order they were set.
func (s *Sim) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{f: f, remaining: f.Count})
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Faults returns the faults still set, with Count = firings left (0:
// unlimited).
func (s *Sim) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, fs := range s.faults {
		f := fs.f
		f.Count = fs.remaining
		out = append(out, f)
	}
	return out
}

// takeFaults fires every fault of the wanted class (notification or API)
// matching mchID and subject (path or event type), consuming one count of
// each.
func (s *Sim) takeFaults(notification bool, mchID, subject string) []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var fired []Fault
	kept := s.faults[:0]
	for _, fs := range s.faults {
		f := fs.f
		if f.Kind.notification() == notification && (f.MchID == "" || f.MchID == mchID) && strings.HasPrefix(subject, f.PathPrefix) {
			fs.seen++
			if f.Every > 1 && fs.seen%f.Every != 0 {
				kept = append(kept, fs)
				continue
			}
			fired = append(fired, f)
			if fs.remaining > 0 {
				fs.remaining--
				if fs.remaining == 0 {
					continue
				}
			}
		}
		kept = append(kept, fs)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	return fired
}

// errorFault is the answer of a KindError fault.
func errorFault(f Fault) *apiError {
	status, code := f.Status, f.Code
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if code == "" {
		switch status {
		case http.StatusTooManyRequests:
			code = "FREQUENCY_LIMITED"
		case http.StatusBadRequest:
			code = "PARAM_ERROR"
		default:
			code = "SYSTEM_ERROR"
		}
	}
	msg := "系统错误 (injected fault)"
	if code == "FREQUENCY_LIMITED" || code == "RATE_LIMITED" {
		msg = "请求频率超过限制 (injected fault)"
	}
	return apiErr(status, code, "%s", msg)
}
