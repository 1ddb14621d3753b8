package wxpaysim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/wxsign"
)

// retrySchedule is WeChat Pay's wait before each retry of a failed
// notification delivery (wechatpay-apiv3.md 7.3): 15 retries, ~24 h 4 m.
func retrySchedule() []time.Duration {
	return []time.Duration{
		15 * time.Second, 15 * time.Second, 30 * time.Second, 3 * time.Minute, 10 * time.Minute,
		20 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 60 * time.Minute,
		3 * time.Hour, 3 * time.Hour, 3 * time.Hour, 6 * time.Hour, 6 * time.Hour,
	}
}

// MaxDeliveryAttempts is the first delivery plus every retry.
const MaxDeliveryAttempts = 16

// Notification is a callback to send to a merchant.
type Notification struct {
	MchID string
	// URL is where to POST; "" means the merchant's NotifyURL.
	URL       string
	EventType string // e.g. TRANSACTION.SUCCESS
	// ResourceType defaults to "encrypt-resource".
	ResourceType string
	OriginalType string // e.g. transaction, refund, payscore, coupon
	Summary      string
	// Plaintext is the resource JSON, sealed with the merchant's APIv3 key.
	Plaintext []byte
	// AssociatedData is the GCM AAD; "" means OriginalType.
	AssociatedData string
}

// DeliveryRecord is one notification POST attempt.
type DeliveryRecord struct {
	NotificationID string
	MchID          string
	EventType      string
	URL            string
	Attempt        int  // 1..MaxDeliveryAttempts within a copy
	Copy           int  // 1; 2 for the extra copy of a duplicate fault
	Duplicate      bool // Copy == 2
	// Faults lists the notification faults that shaped this attempt
	// (corrupting kinds on the first attempt, duplicate kinds on copy 2,
	// KindNotifyOutOfOrder on the held notification's first attempt).
	Faults    []FaultKind
	Status    int    // HTTP status; 0 when the POST failed
	Err       string // transport error, timeout included
	Acked     bool   // 2xx
	Time      time.Time
	Elapsed   time.Duration // real time since Notify queued the notification
	Timestamp string        // Wechatpay-Timestamp sent
	Serial    string        // Wechatpay-Serial sent
}

// Deliveries returns every notification delivery attempt since New or
// Reset, in the order they completed.
func (s *Sim) Deliveries() []DeliveryRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// notification is a queued callback and its delivery state.
type notification struct {
	id, mchID, url, eventType string
	body, tampered            []byte
	faults                    []FaultKind
	queued                    time.Time
	gen                       int
	ctx                       context.Context
	done                      chan struct{}

	// Guarded by Sim.mu.
	finished bool
	err      error
	release  []*notification // held notifications to start after our first attempt
}

func (n *notification) has(k FaultKind) bool { return slices.Contains(n.faults, k) }

type notificationBody struct {
	ID           string           `json:"id"`
	CreateTime   string           `json:"create_time"`
	ResourceType string           `json:"resource_type"`
	EventType    string           `json:"event_type"`
	Summary      string           `json:"summary"`
	Resource     notificationResc `json:"resource"`
}

type notificationResc struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// Notify queues n for asynchronous delivery and returns its id. ctx only
// bounds queueing: delivery outlives it and stops at Close or Reset.
// Notification faults set for the merchant are consumed here.
func (s *Sim) Notify(ctx context.Context, n Notification) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("wxpaysim: notify: %w", err)
	}
	m, err := s.merchant(n.MchID)
	if err != nil {
		return "", fmt.Errorf("wxpaysim: notify: %w", err)
	}
	cfg := m.config()
	if n.URL == "" {
		n.URL = cfg.NotifyURL
	}
	if n.URL == "" {
		return "", fmt.Errorf("%w: notify: no URL and merchant %s has no notify_url", ErrInvalid, n.MchID)
	}
	if n.EventType == "" {
		return "", fmt.Errorf("%w: notify: event_type is required", ErrInvalid)
	}
	if !json.Valid(n.Plaintext) {
		return "", fmt.Errorf("%w: notify: the plaintext resource must be JSON", ErrInvalid)
	}
	if n.ResourceType == "" {
		n.ResourceType = "encrypt-resource"
	}
	if n.AssociatedData == "" {
		n.AssociatedData = n.OriginalType
	}
	nonce, err := resourceNonce()
	if err != nil {
		return "", err
	}
	res, err := wxsign.Seal([]byte(cfg.APIv3Key), nonce, n.AssociatedData, n.OriginalType, n.Plaintext)
	if err != nil {
		return "", fmt.Errorf("wxpaysim: notify: %w", err)
	}
	var kinds []FaultKind
	for _, f := range s.takeFaults(true, n.MchID, n.EventType) {
		if !slices.Contains(kinds, f.Kind) {
			kinds = append(kinds, f.Kind)
		}
	}
	for {
		now := s.Now()
		id, err := newEventID(now)
		if err != nil {
			return "", err
		}
		b := notificationBody{ID: id, CreateTime: formatTime(now), ResourceType: n.ResourceType,
			EventType: n.EventType, Summary: n.Summary, Resource: notificationResc{OriginalType: res.OriginalType,
				Algorithm: res.Algorithm, Ciphertext: res.Ciphertext, AssociatedData: res.AssociatedData, Nonce: res.Nonce}}
		body, err := marshalJSON(b)
		if err != nil {
			return "", err
		}
		b.Summary += " [tampered]"
		tampered, err := marshalJSON(b)
		if err != nil {
			return "", err
		}
		note := &notification{id: id, mchID: n.MchID, url: n.URL, eventType: n.EventType, body: body,
			tampered: tampered, faults: kinds, queued: time.Now(), done: make(chan struct{})}

		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return "", ErrClosed
		}
		if _, dup := s.notes[id]; dup {
			s.mu.Unlock()
			continue
		}
		note.gen, note.ctx = s.gen, s.genCtx
		s.notes[id] = note
		if note.has(KindNotifyOutOfOrder) {
			s.held[n.MchID] = append(s.held[n.MchID], note)
		} else {
			note.release = s.held[n.MchID]
			delete(s.held, n.MchID)
			s.startLocked(note)
		}
		s.mu.Unlock()
		s.logf("wxpaysim: queued %s %s for %s -> %s %v", id, n.EventType, n.MchID, n.URL, kinds)
		return id, nil
	}
}

// WaitDelivered waits until notification id was acknowledged (nil), every
// attempt failed (ErrGaveUp), delivery was canceled (ErrCanceled) or ctx
// ends. With a duplicate fault it waits for both copies.
func (s *Sim) WaitDelivered(ctx context.Context, id string) error {
	s.mu.Lock()
	n := s.notes[id]
	s.mu.Unlock()
	if n == nil {
		return fmt.Errorf("%w: %q", ErrUnknownNotification, id)
	}
	select {
	case <-n.done:
		s.mu.Lock()
		err := n.err
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("wxpaysim: notification %s: %w", id, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wxpaysim: wait for notification %s: %w", id, ctx.Err())
	}
}

// startLocked starts n's delivery goroutine. s.mu must be held and s not closed.
func (s *Sim) startLocked(n *notification) {
	s.wg.Add(1)
	go s.run(n)
}

// finishLocked records n's outcome once. s.mu must be held.
func (s *Sim) finishLocked(n *notification, err error) {
	if n.finished {
		return
	}
	n.finished, n.err = true, err
	close(n.done)
}

// cancelHeldLocked finishes every held notification with ErrCanceled.
func (s *Sim) cancelHeldLocked() {
	for _, list := range s.held {
		for _, n := range list {
			s.finishLocked(n, ErrCanceled)
		}
	}
	s.held = make(map[string][]*notification)
}

// releaseHeld starts the notifications held behind n (out of order).
func (s *Sim) releaseHeld(n *notification) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rel := n.release
	n.release = nil
	for _, h := range rel {
		if s.closed {
			s.finishLocked(h, ErrCanceled)
			continue
		}
		s.startLocked(h)
	}
}

// run delivers n: one copy, or two for the duplicate faults.
func (s *Sim) run(n *notification) {
	defer s.wg.Done()
	first := func() { s.releaseHeld(n) }
	var acked bool
	if n.has(KindNotifyDuplicateConcurrent) {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var results [2]bool
		for i := range results {
			wg.Go(func() {
				<-start
				var onFirst func()
				if i == 0 {
					onFirst = first
				}
				results[i] = s.deliverCopy(n, i+1, onFirst)
			})
		}
		close(start)
		wg.Wait()
		acked = results[0] || results[1]
	} else {
		acked = s.deliverCopy(n, 1, first)
		if acked && n.has(KindNotifyDuplicate) {
			s.deliverCopy(n, 2, nil)
		}
	}
	s.releaseHeld(n)
	var err error
	switch {
	case acked:
	case n.ctx.Err() != nil:
		err = ErrCanceled
	default:
		err = ErrGaveUp
	}
	s.mu.Lock()
	s.finishLocked(n, err)
	s.mu.Unlock()
	s.logf("wxpaysim: notification %s done: %v", n.id, err)
}

// deliverCopy runs the attempts of one copy until one is acknowledged.
func (s *Sim) deliverCopy(n *notification, copyNo int, onFirst func()) bool {
	sched := retrySchedule()
	for attempt := 1; attempt <= len(sched)+1; attempt++ {
		if attempt > 1 {
			t := time.NewTimer(time.Duration(float64(sched[attempt-2]) * s.scale))
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
				return false
			}
		}
		if n.ctx.Err() != nil {
			return false
		}
		ok := s.attempt(n, copyNo, attempt)
		if attempt == 1 && onFirst != nil {
			onFirst()
		}
		if ok {
			return true
		}
	}
	return false
}

// attempt POSTs n once, records it and reports whether it was acknowledged.
func (s *Sim) attempt(n *notification, copyNo, attemptNo int) bool {
	rec := DeliveryRecord{NotificationID: n.id, MchID: n.mchID, EventType: n.eventType, URL: n.url,
		Attempt: attemptNo, Copy: copyNo, Duplicate: copyNo == 2}
	mode := ModePublicKey
	if m, err := s.merchant(n.mchID); err == nil {
		mode = m.config().Mode
	}
	key, serial := s.notifyKey(mode)
	now := s.Now()
	ts := now.Unix()
	body := n.body
	corrupt := func(k FaultKind) bool {
		if copyNo == 1 && attemptNo == 1 && n.has(k) {
			rec.Faults = append(rec.Faults, k)
			return true
		}
		return false
	}
	for _, k := range []FaultKind{KindNotifyDuplicate, KindNotifyDuplicateConcurrent} {
		if copyNo == 2 && attemptNo == 1 && n.has(k) {
			rec.Faults = append(rec.Faults, k)
		}
	}
	corrupt(KindNotifyOutOfOrder)
	if corrupt(KindNotifyStaleTimestamp) {
		ts -= int64((10 * time.Minute).Seconds())
	}
	nonce, err := wxsign.Nonce(rand.Reader)
	var h wxsign.SignatureHeaders
	if err == nil {
		h, err = wxsign.SignResponse(key, serial, ts, nonce, body)
	}
	if err != nil {
		rec.Err = err.Error()
		s.addDelivery(n, rec)
		return false
	}
	if corrupt(KindNotifySignTest) {
		junk := make([]byte, 192)
		_, _ = rand.Read(junk)
		h.Signature = wxsign.SignTestPrefix + base64.StdEncoding.EncodeToString(junk)
	}
	if corrupt(KindNotifyWrongSerial) {
		h.Serial = s.unknownSerial
	}
	if corrupt(KindNotifyTamperedBody) {
		body = n.tampered
	}
	rec.Time, rec.Timestamp, rec.Serial = now, h.Timestamp, h.Serial

	ctx, cancel := context.WithTimeout(n.ctx, deliveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(wxsign.HeaderTimestamp, h.Timestamp)
		req.Header.Set(wxsign.HeaderNonce, h.Nonce)
		req.Header.Set(wxsign.HeaderSignature, h.Signature)
		req.Header.Set(wxsign.HeaderSerial, h.Serial)
		req.Header.Set(wxsign.HeaderSignatureType, wxsign.Scheme)
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			rec.Status = resp.StatusCode
			rec.Acked = resp.StatusCode >= 200 && resp.StatusCode < 300
		}
	}
	if err != nil {
		rec.Err = err.Error()
	}
	rec.Elapsed = time.Since(n.queued)
	s.addDelivery(n, rec)
	s.logf("wxpaysim: delivery %s copy %d attempt %d -> %d %s", n.id, copyNo, attemptNo, rec.Status, rec.Err)
	return rec.Acked
}

func (s *Sim) addDelivery(n *notification, rec DeliveryRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n.gen == s.gen {
		s.deliveries = append(s.deliveries, rec)
	}
}

// newEventID returns "EV-" + 19 digits, like WeChat Pay's notification ids.
func newEventID(now time.Time) (string, error) {
	tail, err := randomString(5, digits)
	if err != nil {
		return "", err
	}
	return "EV-" + now.In(time.FixedZone("CST", 8*3600)).Format("20060102150405") + tail, nil
}
