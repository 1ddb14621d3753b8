package load_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/internal/load"
)

// burstSize is how many identical requests leave at once.
const burstSize = 8

// checkBurst runs a burst of identical requests and requires what the
// reliability issue asks: every caller gets the same successful answer and
// WeChat Pay sees exactly one call of the operation.
func checkBurst(t *testing.T, op string, okStatuses ...int) {
	t.Helper()
	r := start(t, 2)
	b, err := r.Burst(context.Background(), op, burstSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(b)
	ok := 0
	for _, s := range okStatuses {
		ok += b.Statuses[s]
	}
	if ok != burstSize || len(b.Answers) != 1 {
		t.Errorf("%s: %d identical requests answered %v (errors %v) with %d distinct answers %v; want all %v and one answer",
			op, burstSize, b.Statuses, b.Errors, len(b.Answers), b.Answers, okStatuses)
	}
	if b.Calls != 1 {
		t.Errorf("%s: %d identical concurrent requests made %d WeChat Pay calls of the operation, want exactly 1 (all calls naming it: %v)",
			op, burstSize, b.Calls, b.Related)
	}
}

// TestConcurrentIdenticalPaymentOrderExactlyOneWeChatCall: the same POST
// /payments/orders sent by 8 callers at once must prepay once.
func TestConcurrentIdenticalPaymentOrderExactlyOneWeChatCall(t *testing.T) {
	checkBurst(t, load.OpPayment, http.StatusOK)
}

// TestConcurrentIdenticalPayScoreOrderExactlyOneWeChatCall: the same POST
// /payscore/orders sent by 8 callers at once must create once (the first
// answers 201, the replays 200).
func TestConcurrentIdenticalPayScoreOrderExactlyOneWeChatCall(t *testing.T) {
	checkBurst(t, load.OpPayScoreCreate, http.StatusCreated, http.StatusOK)
}

// TestConcurrentIdenticalCouponUseExactlyOneWeChatCall: the same POST
// /coupons/use sent by 8 callers at once must use the coupon once.
func TestConcurrentIdenticalCouponUseExactlyOneWeChatCall(t *testing.T) {
	checkBurst(t, load.OpCouponUse, http.StatusOK)
}
