package wxpaysim

import (
	"time"
)

// Pay Score deductions in the bills (wechatpay-apiv3.md 2.7): a deduction
// WeChat Pay makes on its own appears in the trade bill as a payment of
// trade type AUTH whose 商户订单号 WeChat generated and whose 商户数据包 is
// wxzff|<service order id>|<out_order_no>. The Pay Score simulator records
// deductions on its service orders; before a bill is rendered every
// deduction of the merchant that is not yet a transaction becomes one here
// (idempotent, keyed by transaction_id), so the trade and fund-flow bills
// list it. Payment and refund APIs see it from then on too.

// payScoreOutTradeNo is the 商户订单号 WeChat Pay gives a deduction:
// "1000" and the transaction id's date and sequence, stable per deduction.
func payScoreOutTradeNo(txnID string) string {
	if len(txnID) > 4 {
		return "1000" + txnID[4:]
	}
	return "1000" + txnID
}

// syncPayScoreDeductions turns the merchant's Pay Score deductions into
// AUTH transactions. Neither s.mu nor m.mu may be held.
func (s *Sim) syncPayScoreDeductions(m *merchant) {
	ps := s.payscore()
	mchID := m.config().MchID
	type deduction struct {
		txnID, outOrderNo, orderID, appID, openID, intro string
		amount                                           int64
		at                                               time.Time
		promotions                                       []promotionJSON
	}
	var found []deduction
	ps.lock(s)
	for _, o := range ps.orders {
		if o.mchID != mchID {
			continue
		}
		for _, d := range o.details {
			if d.TransactionID == "" {
				continue
			}
			at, err := time.ParseInLocation("20060102150405", d.PaidTime, shanghai())
			if err != nil {
				continue
			}
			found = append(found, deduction{txnID: d.TransactionID, outOrderNo: o.req.OutOrderNo, orderID: o.orderID, appID: o.req.AppID,
				openID: o.req.OpenID, intro: o.req.ServiceIntroduction, amount: d.Amount, at: at, promotions: append([]promotionJSON(nil), d.PromotionDetail...)})
		}
	}
	ps.mu.Unlock()
	if len(found) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range found {
		if _, ok := m.byTxn[d.txnID]; ok {
			continue
		}
		var coupons int64
		for i := range d.promotions {
			coupons += d.promotions[i].Amount
		}
		no := payScoreOutTradeNo(d.txnID)
		total := d.amount
		o := &order{tradeType: "AUTH", total: d.amount, state: tradeSuccess, txnID: d.txnID, successAt: d.at, openID: d.openID,
			payerTotal: d.amount - coupons, bankType: "OTHERS", promotions: d.promotions,
			req: prepayRequest{AppID: d.appID, MchID: mchID, Description: d.intro, OutTradeNo: no,
				Attach: "wxzff|" + d.orderID + "|" + d.outOrderNo, Amount: &amountInput{Total: &total, Currency: "CNY"}}}
		m.orders[no] = o
		m.byTxn[d.txnID] = o
	}
}
