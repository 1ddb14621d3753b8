package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
)

// simInfo is GET /sim/info (the key material it also carries is public).
type simInfo struct {
	Now       string `json:"now"`
	Merchants []struct {
		MchID      string   `json:"mchid"`
		Mode       string   `json:"mode"`
		AppIDs     []string `json:"appids"`
		ServiceIDs []string `json:"service_ids"`
		NotifyURL  string   `json:"notify_url"`
	} `json:"merchants"`
}

// delivery is one notification delivery attempt (GET /sim/notifications).
type delivery struct {
	NotificationID string `json:"notification_id"`
	EventType      string `json:"event_type"`
	URL            string `json:"url"`
	Attempt        int    `json:"attempt"`
	Status         int    `json:"status"`
	Error          string `json:"error"`
	Acked          bool   `json:"acked"`
}

// simNow reads the simulator clock.
func (r *runner) simNow(ctx context.Context) (time.Time, error) {
	var info simInfo
	if err := r.quietGet(ctx, "sim", "/sim/info", &info); err != nil {
		return time.Time{}, err
	}
	return parseTime("simulator now", info.Now)
}

// handlerNow reads a function's clock from its health route.
func (r *runner) handlerNow(ctx context.Context) (time.Time, error) {
	var h struct {
		Time string `json:"time"`
	}
	if err := r.quietGet(ctx, "app", "/payments/health", &h); err != nil {
		return time.Time{}, err
	}
	return parseTime("payments health time", h.Time)
}

func parseTime(what, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: %w", what, s, err)
	}
	return t, nil
}

// advance moves the simulator clock by d (printed as a call).
func (r *runner) advance(ctx context.Context, d time.Duration) (time.Time, error) {
	var out struct {
		Now string `json:"now"`
	}
	if _, err := r.sim(ctx, "POST", "/sim/clock/advance", map[string]any{"seconds": math.Round(d.Seconds())}, &out); err != nil {
		return time.Time{}, err
	}
	return parseTime("simulator now", out.Now)
}

// untilTomorrowAt is how far t is from hour:00 of the next Shanghai day.
func untilTomorrowAt(t time.Time, hour int) time.Duration {
	s := t.In(ledger.Shanghai)
	next := time.Date(s.Year(), s.Month(), s.Day()+1, hour, 0, 0, 0, ledger.Shanghai)
	return next.Sub(t)
}

// deliveries lists the delivery attempts of one notification, or of the
// merchant when id is "".
func (r *runner) deliveries(ctx context.Context, id string) ([]delivery, error) {
	q := "?mchid=" + url.QueryEscape(r.res.MchID)
	if id != "" {
		q = "?id=" + url.QueryEscape(id)
	}
	var ds struct {
		Notifications []delivery `json:"notifications"`
	}
	if err := r.quietGet(ctx, "sim", "/sim/notifications"+q, &ds); err != nil {
		return nil, err
	}
	return ds.Notifications, nil
}

// waitDelivered waits until the notify function acknowledged notification
// id and notes the delivery.
func (r *runner) waitDelivered(ctx context.Context, id string) error {
	if id == "" {
		return unexpected("the simulator queued no notification")
	}
	var got delivery
	var seen []delivery
	n, err := r.poll(ctx, "notification "+id, func(ctx context.Context) (bool, error) {
		ds, err := r.deliveries(ctx, id)
		if err != nil {
			return false, err
		}
		seen = ds
		for _, d := range ds {
			if d.Acked {
				got = d
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%w (attempts so far: %s)", err, attempts(seen))
	}
	r.noteDelivery(got, n)
	return nil
}

// ackedIDs are the notification ids of eventType the notify function has
// acknowledged so far.
func (r *runner) ackedIDs(ctx context.Context, eventType string) (map[string]bool, error) {
	ds, err := r.deliveries(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, d := range ds {
		if d.EventType == eventType && d.Acked {
			out[d.NotificationID] = true
		}
	}
	return out, nil
}

// waitNewDelivery waits until a notification of eventType that is not in
// before was acknowledged (for notifications the simulator sends on its own,
// e.g. COUPON.SEND, whose id no answer names).
func (r *runner) waitNewDelivery(ctx context.Context, eventType string, before map[string]bool) error {
	var got delivery
	n, err := r.poll(ctx, "a new "+eventType, func(ctx context.Context) (bool, error) {
		ds, err := r.deliveries(ctx, "")
		if err != nil {
			return false, err
		}
		for _, d := range ds {
			if d.EventType == eventType && d.Acked && !before[d.NotificationID] {
				got = d
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	r.noteDelivery(got, n)
	return nil
}

func (r *runner) noteDelivery(d delivery, polls int) {
	path := d.URL
	if u, err := url.Parse(d.URL); err == nil {
		path = u.Path
	}
	r.note("%s delivered to %s: the notify function answered %d (attempt %d; %s of /sim/notifications)",
		d.EventType, path, d.Status, d.Attempt, plural(polls, "poll"))
}

func attempts(ds []delivery) string {
	if len(ds) == 0 {
		return "none"
	}
	var parts []string
	for _, d := range ds {
		s := fmt.Sprintf("#%d %d", d.Attempt, d.Status)
		if d.Error != "" {
			s += " " + d.Error
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// randomSuffix is n characters of [a-z0-9] from crypto/rand.
func randomSuffix(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// yuan renders fen as yuan with two decimals, for the printed lines only.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// plural is "1 poll", "2 polls".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
