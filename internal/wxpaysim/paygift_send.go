package wxpaysim

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
)

// PayGiftSend is one coupon a pay-gift activity sent (or failed to send)
// for a qualifying payment.
type PayGiftSend struct {
	ActivityID    string `json:"activity_id"`
	Creator       string `json:"creator_mchid"`
	PayMchID      string `json:"pay_mchid"`
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OpenID        string `json:"openid"`
	StockID       string `json:"stock_id"`
	CouponCode    string `json:"coupon_code,omitempty"`
	Error         string `json:"error,omitempty"`
	Time          string `json:"time"`
}

// payGiftOnPayment runs after a payment succeeded (PayOrder calls it): every
// ongoing activity, of any merchant, that lists the paying merchant and
// whose threshold (and goods tags) the order meets sends its coupons to the
// payer, once per activity and transaction. COUPON.SEND carries
// send_channel BUSICOUPON_SEND_CHANNEL_PAYGIFT and attach_info.transaction_id.
// Failures are logged and recorded: the payment stands either way.
func (s *Sim) payGiftOnPayment(ctx context.Context, payMchID, goodsTag string, tx transactionJSON) []PayGiftSend {
	if tx.TradeState != tradeSuccess || tx.Payer == nil {
		return nil
	}
	s.mu.Lock()
	ms := make([]*merchant, 0, len(s.merchants))
	for _, m := range s.merchants {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	now := s.Now()
	var out []PayGiftSend
	var notes []bfCouponSend
	for _, m := range ms {
		m.mu.Lock()
		creator := m.cfg.MchID
		pg := m.paygift
		for _, id := range pg.order {
			a := pg.activities[id]
			key := a.id + "|" + tx.TransactionID
			if pg.gifted[key] || !a.qualifies(payMchID, tx.Amount.Total, goodsTag, now) {
				continue
			}
			pg.gifted[key] = true
			for i, aw := range a.req.AwardSendRule.AwardList {
				rec := PayGiftSend{ActivityID: a.id, Creator: creator, PayMchID: payMchID, TransactionID: tx.TransactionID,
					OutTradeNo: tx.OutTradeNo, OpenID: tx.Payer.OpenID, StockID: aw.StockID, Time: formatTime(now)}
				cp, _, err := m.busifavor.send(creator, bfSendSpec{stockID: aw.StockID, openid: tx.Payer.OpenID, appid: tx.AppID,
					outRequestNo: "PAYGIFT" + a.id + "_" + tx.TransactionID + "_" + strconv.Itoa(i), channel: bfChannelPayGift, sender: payMchID,
					attach: map[string]any{"transaction_id": tx.TransactionID, "activity_id": a.id}, notes: &notes}, now)
				if err != nil {
					rec.Error = errorsAsAPI(err).Message
					s.logf("wxpaysim: pay-gift %s for %s: stock %s: %v", a.id, tx.TransactionID, aw.StockID, err)
				} else {
					rec.CouponCode = cp.code
				}
				pg.sends = append(pg.sends, rec)
				out = append(out, rec)
			}
		}
		m.mu.Unlock()
	}
	s.queueCouponSends(ctx, notes)
	return out
}

// PayGiftForOrder checks an already paid order against the pay-gift
// activities now (PayOrder does this by itself when the order is paid; an
// order already checked for an activity is not gifted twice). Give
// outTradeNo or transactionID. Errors: ErrUnknownMerchant,
// ErrOrderNotFound, ErrOrderState (not paid).
func (s *Sim) PayGiftForOrder(ctx context.Context, mchID, outTradeNo, transactionID string) ([]PayGiftSend, error) {
	m, err := s.merchant(mchID)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	o, ok := m.orders[outTradeNo]
	if transactionID != "" {
		o, ok = m.byTxn[transactionID]
	}
	if !ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: merchant %s out_trade_no %q transaction_id %q", ErrOrderNotFound, mchID, outTradeNo, transactionID)
	}
	if o.state != tradeSuccess {
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: order %s is %s, not paid", ErrOrderState, o.req.OutTradeNo, o.state)
	}
	view, tag := o.view(mchID), o.req.GoodsTag
	m.mu.Unlock()
	return s.payGiftOnPayment(ctx, mchID, tag, view), nil
}

// PayGiftSends lists the pay-gift sends of activities created by mchID
// ("" for every merchant, by mchid), oldest first.
func (s *Sim) PayGiftSends(mchID string) []PayGiftSend {
	s.mu.Lock()
	ids := make([]string, 0, len(s.merchants))
	for id := range s.merchants {
		if mchID == "" || id == mchID {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	ms := make([]*merchant, len(ids))
	for i, id := range ids {
		ms[i] = s.merchants[id]
	}
	s.mu.Unlock()
	out := []PayGiftSend{}
	for _, m := range ms {
		m.mu.Lock()
		out = append(out, m.paygift.sends...)
		m.mu.Unlock()
	}
	return out
}

func (s *Sim) adminPayGift(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var req struct {
		MchID         string `json:"mchid"`
		OutTradeNo    string `json:"out_trade_no"`
		TransactionID string `json:"transaction_id"`
	}
	if err := decodeAdmin(r, &req); err != nil {
		adminFail(w, err)
		return
	}
	sends, err := s.PayGiftForOrder(r.Context(), req.MchID, req.OutTradeNo, req.TransactionID)
	if err != nil {
		adminFail(w, err)
		return
	}
	if sends == nil {
		sends = []PayGiftSend{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sends": sends})
}

func (s *Sim) adminPayGiftSends(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]any{"sends": s.PayGiftSends(r.URL.Query().Get("mchid"))})
}
