package wxnotify

import (
	"fmt"
	"strconv"
)

// Transaction is the decrypted resource of TRANSACTION.SUCCESS (and of a
// payment query answer): wechatpay-apiv3.md 5.2 and 7.4.
type Transaction struct {
	AppID          string `json:"appid"`
	MchID          string `json:"mchid"`
	OutTradeNo     string `json:"out_trade_no"`
	TransactionID  string `json:"transaction_id"`
	TradeType      string `json:"trade_type"`
	TradeState     string `json:"trade_state"`
	TradeStateDesc string `json:"trade_state_desc"`
	BankType       string `json:"bank_type"`
	Attach         string `json:"attach"`
	SuccessTime    string `json:"success_time"`
	Payer          struct {
		OpenID string `json:"openid"`
	} `json:"payer"`
	Amount struct {
		Total         int64  `json:"total"`
		PayerTotal    int64  `json:"payer_total"`
		Currency      string `json:"currency"`
		PayerCurrency string `json:"payer_currency"`
	} `json:"amount"`
	PromotionDetail []Promotion `json:"promotion_detail"`
}

// Promotion is one promotion_detail entry of a payment.
type Promotion struct {
	CouponID            string `json:"coupon_id"`
	Name                string `json:"name"`
	Scope               string `json:"scope"`
	Type                string `json:"type"`
	Amount              int64  `json:"amount"`
	StockID             string `json:"stock_id"`
	WechatpayContribute int64  `json:"wechatpay_contribute"`
	MerchantContribute  int64  `json:"merchant_contribute"`
	OtherContribute     int64  `json:"other_contribute"`
	Currency            string `json:"currency"`
}

// DecodeTransaction decodes a transaction resource. It is the hot path of
// every payment notification, so it uses the envelope's scanner rather than
// reflection; TestDecodeTransactionMatchesEncodingJSON keeps it equal to
// encoding/json on the same input.
func DecodeTransaction(b []byte) (Transaction, error) {
	var t Transaction
	p := parser{b: b}
	err := p.object(func(key []byte) error {
		switch string(key) {
		case "appid":
			return p.str(&t.AppID)
		case "mchid":
			return p.str(&t.MchID)
		case "out_trade_no":
			return p.str(&t.OutTradeNo)
		case "transaction_id":
			return p.str(&t.TransactionID)
		case "trade_type":
			return p.str(&t.TradeType)
		case "trade_state":
			return p.str(&t.TradeState)
		case "trade_state_desc":
			return p.str(&t.TradeStateDesc)
		case "bank_type":
			return p.str(&t.BankType)
		case "attach":
			return p.str(&t.Attach)
		case "success_time":
			return p.str(&t.SuccessTime)
		case "payer":
			return p.object(func(k []byte) error {
				if string(k) == "openid" {
					return p.str(&t.Payer.OpenID)
				}
				return p.skip(1)
			})
		case "amount":
			return p.object(func(k []byte) error {
				switch string(k) {
				case "total":
					return p.int(&t.Amount.Total)
				case "payer_total":
					return p.int(&t.Amount.PayerTotal)
				case "currency":
					return p.str(&t.Amount.Currency)
				case "payer_currency":
					return p.str(&t.Amount.PayerCurrency)
				}
				return p.skip(1)
			})
		case "promotion_detail":
			p.ws()
			t.PromotionDetail = nil // null, as encoding/json does
			if p.i < len(p.b) && p.b[p.i] == '[' {
				t.PromotionDetail = []Promotion{}
			}
			return p.array(func() error {
				var pr Promotion
				err := p.object(func(k []byte) error {
					switch string(k) {
					case "coupon_id":
						return p.str(&pr.CouponID)
					case "name":
						return p.str(&pr.Name)
					case "scope":
						return p.str(&pr.Scope)
					case "type":
						return p.str(&pr.Type)
					case "amount":
						return p.int(&pr.Amount)
					case "stock_id":
						return p.str(&pr.StockID)
					case "wechatpay_contribute":
						return p.int(&pr.WechatpayContribute)
					case "merchant_contribute":
						return p.int(&pr.MerchantContribute)
					case "other_contribute":
						return p.int(&pr.OtherContribute)
					case "currency":
						return p.str(&pr.Currency)
					}
					return p.skip(2)
				})
				t.PromotionDetail = append(t.PromotionDetail, pr)
				return err
			})
		}
		return p.skip(0)
	})
	if err != nil {
		return Transaction{}, err
	}
	p.ws()
	if p.i != len(p.b) {
		return Transaction{}, fmt.Errorf("data after the JSON object at byte %d", p.i)
	}
	return t, nil
}

// int parses an integer number (fen amounts; no fractions or exponents).
func (p *parser) int(dst *int64) error {
	p.ws()
	j := p.i
	for j < len(p.b) && !isDelim(p.b[j]) {
		j++
	}
	v, err := strconv.ParseInt(string(p.b[p.i:j]), 10, 64)
	if err != nil {
		return fmt.Errorf("expected an integer at byte %d", p.i)
	}
	p.i = j
	*dst = v
	return nil
}

// array parses [v, ...], calling elem positioned before each value; null is
// an empty array.
func (p *parser) array(elem func() error) error {
	p.ws()
	if p.i+4 <= len(p.b) && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return nil
	}
	if err := p.expect('['); err != nil {
		return err
	}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return fmt.Errorf("unterminated array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return fmt.Errorf("expected ',' or ']' at byte %d", p.i)
		}
	}
}
