package soak

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/app/notify"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// recordPayment records a storm payment at the simulated WeChat Pay (so a
// follow-up query finds it) and returns its transaction id and success
// time.
type recordPayment func(ctx context.Context, outTradeNo string, total int64, promo map[string]any) (txnID, successTime string, err error)

// generate seeds the ledger with what the product functions would have
// written before the notifications (most, not all: some notifications
// arrive before their entity is known) and returns the notifications, the
// final state each entity must reach and the payments the ledger knows
// before their notification. With record, those payments also exist at the
// simulator, with the transaction id and success time their notification
// carries.
func generate(ctx context.Context, st store.Store, m *testkeys.Merchant, rng *rand.Rand, n int, record recordPayment) ([]*note, []truth, []string, error) {
	var known []string
	var notes []*note
	var truths []truth
	base := time.Date(2026, 11, 22, 9, 0, 0, 0, ledger.Shanghai)
	at := func(i int) string { return ledger.WechatTime(base.Add(time.Duration(i) * time.Second)) }
	add := func(eventType, channel, originalType, entity string, payload any) error {
		plain, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		notes = append(notes, &note{id: "EV-" + testkeys.RandomString(16), eventType: eventType, channel: channel,
			originalType: originalType, plain: plain, entity: entity})
		return nil
	}
	for i := 0; len(notes) < n; i++ {
		switch r := rng.IntN(100); {
		case r < 40: // a payment, most with a NOCASH coupon
			no := fmt.Sprintf("P%08d", i)
			total := int64(100 + rng.IntN(100000))
			var promos []any
			var coupon, nocash int64
			if rng.IntN(2) == 0 {
				coupon = 1 + int64(rng.IntN(int(total/10)+1))
				typ := "NOCASH"
				if rng.IntN(3) == 0 {
					typ = "CASH"
				} else {
					nocash = coupon
				}
				promos = append(promos, map[string]any{"coupon_id": "C" + no, "type": typ, "amount": coupon, "stock_id": "931386",
					"wechatpay_contribute": 0, "merchant_contribute": coupon, "other_contribute": 0, "currency": "CNY"})
			}
			txn, success := "42"+no, at(i)
			if rng.IntN(20) != 0 { // 5%: the payment is unknown when its notification arrives
				if err := st.Put(ctx, &store.Put{Key: ledger.OrderKey(no), Value: ledger.Order{OutTradeNo: no, Status: ledger.TradeNotPay, Total: total, Source: "api"}}); err != nil {
					return nil, nil, nil, err
				}
				if record != nil {
					var promo map[string]any
					if len(promos) > 0 {
						promo = promos[0].(map[string]any)
					}
					var err error
					if txn, success, err = record(ctx, no, total, promo); err != nil {
						return nil, nil, nil, err
					}
				}
				known = append(known, no)
			}
			if err := add(notify.EventTransactionSuccess, "payments", "transaction", no, map[string]any{
				"appid": m.AppID, "mchid": m.MchID, "out_trade_no": no, "transaction_id": txn, "trade_type": "JSAPI",
				"trade_state": "SUCCESS", "bank_type": "OTHERS", "success_time": success, "payer": map[string]any{"openid": "o" + no},
				"amount":           map[string]any{"total": total, "payer_total": total - coupon, "currency": "CNY", "payer_currency": "CNY"},
				"promotion_detail": promos}); err != nil {
				return nil, nil, nil, err
			}
			truths = append(truths, truth{key: ledger.OrderKey(no), attr: "status", state: "SUCCESS", total: total,
				payerTotal: total - coupon, settlement: total - nocash, eventType: notify.EventTransactionSuccess, entity: no})
		case r < 60: // a refund result
			no := fmt.Sprintf("R%08d", i)
			ev, status := notify.EventRefundSuccess, "SUCCESS"
			switch rng.IntN(6) {
			case 0:
				ev, status = notify.EventRefundClosed, "CLOSED"
			case 1:
				ev, status = notify.EventRefundAbnormal, "ABNORMAL"
			}
			if rng.IntN(10) != 0 {
				if err := st.Put(ctx, &store.Put{Key: ledger.RefundKey(no), Value: map[string]any{"out_refund_no": no, "status": "PROCESSING"}}); err != nil {
					return nil, nil, nil, err
				}
			}
			payload := map[string]any{"mchid": m.MchID, "out_trade_no": "P" + no, "transaction_id": "42" + no, "out_refund_no": no,
				"refund_id": "50" + no, "refund_status": status, "user_received_account": "支付用户零钱",
				"amount": map[string]any{"total": 1000, "refund": 500, "payer_total": 900, "payer_refund": 450}}
			if status == "SUCCESS" {
				payload["success_time"] = at(i)
			}
			if err := add(ev, "refunds", "refund", no, payload); err != nil {
				return nil, nil, nil, err
			}
			truths = append(truths, truth{key: ledger.RefundKey(no), attr: "status", state: status, eventType: ev, entity: no})
		case r < 70: // a user authorizes Pay Score, and half of them revoke later
			openid := fmt.Sprintf("U%08d", i)
			open := map[string]any{"appid": m.AppID, "mchid": m.MchID, "service_id": m.ServiceID, "openid": openid,
				"user_service_status": "USER_OPEN_SERVICE", "openorclose_time": at(i)}
			if err := add(notify.EventPayScoreOpen, "payscore", "payscore", openid, open); err != nil {
				return nil, nil, nil, err
			}
			final := "AVAILABLE"
			if rng.IntN(2) == 0 {
				closed := map[string]any{"appid": m.AppID, "mchid": m.MchID, "service_id": m.ServiceID, "openid": openid,
					"user_service_status": "USER_CLOSE_SERVICE", "openorclose_time": at(i + 3600)}
				if err := add(notify.EventPayScoreClose, "payscore", "payscore", openid, closed); err != nil {
					return nil, nil, nil, err
				}
				final = "UNAVAILABLE"
				truths = append(truths, truth{key: ledger.AuthorizationKey(m.ServiceID, openid), attr: "state", state: final,
					eventType: notify.EventPayScoreClose, entity: openid})
				continue
			}
			truths = append(truths, truth{key: ledger.AuthorizationKey(m.ServiceID, openid), attr: "state", state: final,
				eventType: notify.EventPayScoreOpen, entity: openid})
		case r < 85: // a Pay Score deduction
			no := fmt.Sprintf("S%08d", i)
			if err := st.Put(ctx, &store.Put{Key: ledger.PayScoreOrderKey(no), Value: map[string]any{"out_order_no": no, "state": "DOING", "state_description": "MCH_COMPLETE"}}); err != nil {
				return nil, nil, nil, err
			}
			amount := int64(100 + rng.IntN(5000))
			if err := add(notify.EventPayScorePaid, "payscore", "payscore", no, map[string]any{"appid": m.AppID, "mchid": m.MchID,
				"service_id": m.ServiceID, "out_order_no": no, "order_id": "1000" + no, "openid": "o" + no, "state": "DONE", "total_amount": amount,
				"collection": map[string]any{"state": "USER_PAID", "total_amount": amount, "paying_amount": 0, "paid_amount": amount,
					"details": []any{map[string]any{"seq": 1, "amount": amount, "paid_type": "NEWTON", "paid_time": at(i), "transaction_id": "42" + no}}}}); err != nil {
				return nil, nil, nil, err
			}
			truths = append(truths, truth{key: ledger.PayScoreOrderKey(no), attr: "state", state: "DONE", eventType: notify.EventPayScorePaid, entity: no})
		default: // a coupon sent to a user
			code := fmt.Sprintf("CODE%08d", i)
			if err := add(notify.EventCouponSend, "coupons", "coupon", code, map[string]any{"event_type": "EVENT_TYPE_BUSICOUPON_SEND",
				"coupon_code": code, "stock_id": "1212", "send_time": at(i), "openid": "o" + code, "send_channel": "BUSICOUPON_SEND_CHANNEL_API",
				"send_merchant": m.MchID}); err != nil {
				return nil, nil, nil, err
			}
			truths = append(truths, truth{key: ledger.CouponKey("1212", code), attr: "state", state: "SENDED", eventType: notify.EventCouponSend, entity: code})
		}
	}
	return notes, truths, known, nil
}

// check compares the ledger with the truth and counts domain events: each
// entity must be in its final state (lost otherwise) and no event type may
// have taken effect twice for one entity (double otherwise).
func check(ctx context.Context, st store.Store, truths []truth, pub *publisher, rep *Report) error {
	problem := func(format string, args ...any) {
		if len(rep.Problems) < 20 {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, tr := range truths {
		var row map[string]any
		if err := st.Get(ctx, tr.key, &row); err != nil {
			rep.Lost++
			problem("%s: %v", tr.key, err)
			continue
		}
		if row[tr.attr] != tr.state {
			rep.Lost++
			problem("%s: %s=%v, want %s", tr.key, tr.attr, row[tr.attr], tr.state)
			continue
		}
		if tr.eventType == notify.EventTransactionSuccess {
			num := func(k string) int64 { f, _ := row[k].(float64); return int64(f) }
			if num("total") != tr.total || num("payer_total") != tr.payerTotal || num("settlement_total") != tr.settlement {
				rep.Lost++
				problem("%s: amounts %v/%v/%v, want %d/%d/%d", tr.key, row["total"], row["payer_total"], row["settlement_total"],
					tr.total, tr.payerTotal, tr.settlement)
			}
		}
		applied, _ := row[notify.AppliedAttr(tr.eventType)].(float64)
		switch {
		case applied > 1:
			rep.DoubleApplied++
			problem("%s: %s applied %v times", tr.key, tr.eventType, applied)
		case applied < 1:
			rep.Lost++
			problem("%s: %s never applied", tr.key, tr.eventType)
		}
		if len(pub.counts[tr.eventType+"|"+tr.entity]) == 0 {
			rep.Lost++
			problem("%s %s: no domain event published", tr.eventType, tr.entity)
		}
	}
	for k, ids := range pub.counts {
		if len(ids) > 1 {
			rep.DoubleApplied++
			problem("%s: %d distinct domain events", k, len(ids))
		}
	}
	return nil
}
