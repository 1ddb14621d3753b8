package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Burst is n identical requests sent at the same instant, and what WeChat
// Pay saw of them.
type Burst struct {
	Op       string
	N        int
	Statuses map[int]int // answer status -> count
	// Calls is how many WeChat Pay calls of the operation the simulator
	// received for this one business request; the requirement is 1.
	Calls int
	// Related lists every simulator request that names the burst's business
	// number (queries included), as "METHOD path".
	Related []string
	// Answers are the distinct 2xx answer bodies' key values (prepay_id,
	// order_id, use_request_no): more than one means callers were told
	// different things about the same request.
	Answers []string
	Errors  []string
}

// String summarises the burst.
func (b *Burst) String() string {
	var st []string
	for code, n := range b.Statuses {
		st = append(st, fmt.Sprintf("%d×%d", n, code))
	}
	sort.Strings(st)
	return fmt.Sprintf("%s: %d identical concurrent requests -> answers {%s}, %d WeChat Pay call(s) (want 1), %d distinct answer(s), related calls %v",
		b.Op, b.N, strings.Join(st, " "), b.Calls, len(b.Answers), b.Related)
}

// BurstOps are the operations Burst knows.
var BurstOps = []string{OpPayment, OpPayScoreCreate, OpCouponUse}

// Burst sends n identical requests of op at once (all goroutines released
// together on warm connections) and counts the WeChat Pay calls that one
// business request caused.
func (r *Runner) Burst(ctx context.Context, op string, n int) (*Burst, error) {
	var method, path, body, key, field string
	now := time.Now()
	switch op {
	case OpPayment:
		key = "LDBP" + r.next()
		method, path, body, field = http.MethodPost, "/payments/orders", paymentBody(key), "prepay_id"
	case OpPayScoreCreate:
		key = "LDBS" + r.next()
		method, path, body, field = http.MethodPost, "/payscore/orders", payScoreCreateBody(key, r.psUsers[0], now), "order_id"
	case OpCouponUse:
		c, ok := r.takeCoupon()
		if !ok {
			return nil, fmt.Errorf("load: no coupon left for a burst")
		}
		key = c.code
		method, path, body, field = http.MethodPost, "/coupons/use", couponUseBody(c), "use_request_no"
	default:
		return nil, fmt.Errorf("load: unknown burst operation %q", op)
	}
	// Warm n connections so the requests leave together.
	var warm sync.WaitGroup
	for i := 0; i < n; i++ {
		warm.Add(1)
		go func() {
			defer warm.Done()
			_, _ = r.call(ctx, http.MethodGet, "/payments/health", "")
		}()
	}
	warm.Wait()
	simBefore := len(r.s.Sim.Requests())
	b := &Burst{Op: op, N: n, Statuses: map[int]int{}}
	var mu sync.Mutex
	answers := map[string]bool{}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			a, err := r.call(ctx, method, path, body)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				b.Errors = append(b.Errors, err.Error())
				return
			}
			b.Statuses[a.status]++
			if a.status/100 == 2 {
				var m map[string]any
				if json.Unmarshal(a.body, &m) == nil {
					answers[fmt.Sprint(m[field])] = true
				}
			} else if len(b.Errors) < 5 {
				b.Errors = append(b.Errors, fmt.Sprintf("%d %s", a.status, trim(a.body)))
			}
		}()
	}
	close(gate)
	wg.Wait()
	for a := range answers {
		b.Answers = append(b.Answers, a)
	}
	sort.Strings(b.Answers)
	for _, rec := range r.s.Sim.Requests()[simBefore:] {
		if !strings.Contains(rec.Path, key) && !strings.Contains(string(rec.Body), key) {
			continue
		}
		p, _, _ := strings.Cut(rec.Path, "?")
		b.Related = append(b.Related, rec.Method+" "+p)
		if wechatOp(rec.Method, rec.Path) == op {
			b.Calls++
		}
	}
	return b, nil
}
