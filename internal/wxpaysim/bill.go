package wxpaysim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Trade bills (wechatpay-apiv3.md 6.1-6.3): GET /v3/bill/tradebill applies
// for a day's bill and answers {hash_type, hash_value, download_url};
// GET /v3/billdownload/file?token= serves the file, unsigned. The file is
// generated from the simulator's orders and refunds of that Asia/Shanghai
// day, in the layout merchants with no-prepaid (免充值) coupons get.

// Bill rules of the simulator.
const (
	// billFeePerMille is the simulated fee rate (费率 0.60%), charged on
	// the settlement amount (UNCONFIRMED, 6.3) and rounded to the fen.
	billFeePerMille = 6
	billFeeRate     = "0.60%"
	// billDownloadLifetime: the docs say 30 s (old) or 5 min (new),
	// UNCONFIRMED; the simulator uses the shorter so late downloads fail here.
	billDownloadLifetime = 30 * time.Second
	// billReadyHour: a day's bill exists from 09:00 the next day (Shanghai).
	billReadyHour = 9
	billLineEnd   = "\r\n"
)

// billColumns is the column layout of a bill_type (6.3); the first 14
// detail columns are common to all.
func billColumns(billType string) (detail, summary []string) {
	common := []string{"交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识",
		"交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额"}
	switch billType {
	case "SUCCESS":
		return append(common, "商品名称", "商户数据包", "手续费", "费率", "订单金额", "费率备注"),
			[]string{"总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"}
	case "REFUND":
		return append(common, "退款申请时间", "退款成功时间", "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型",
				"退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注"),
			[]string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}
	}
	return append(common, "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包",
			"手续费", "费率", "订单金额", "申请退款金额", "费率备注"),
		[]string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}
}

// billSummarySource names the detail column a summary column adds up.
// (应结订单总金额 adds up 应结订单金额, 手续费总金额 adds up 手续费).
func billSummarySource(col string) string {
	if col == "手续费总金额" {
		return "手续费"
	}
	return strings.Replace(col, "总", "", 1)
}

func shanghai() *time.Location { return time.FixedZone("CST", 8*3600) }

// yuan renders fen as yuan with two decimals.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// feeYuan renders a fee in fen as yuan with five decimals (0.03000).
func feeYuan(fen int64) string { return yuan(fen) + "000" }

// fee is the simulated fee on a settlement amount, rounded half up to the fen.
func fee(settlement int64) int64 { return (settlement*billFeePerMille*2 + 1000) / 2000 }

// billField cleans a value for the comma-separated file: the real format has
// no quoting, so commas become full-width and line breaks spaces (WeChat
// Pay's handling of such characters is UNCONFIRMED).
func billField(v string) string {
	return strings.NewReplacer(",", "，", "\r", " ", "\n", " ").Replace(v)
}

// billRefundStatus maps a refund status to the bill's 退款状态 (6.3,
// UNCONFIRMED): ABNORMAL shows as CHANGE.
func billRefundStatus(status string) string {
	if status == refundAbnormal {
		return "CHANGE"
	}
	return status
}

// billRow is one detail row: a payment, or a refund (r != nil).
type billRow struct {
	at time.Time
	o  *order
	r  *refund
}

// tradeBill renders the bill of date (yyyy-MM-dd, Shanghai) and reports how
// many detail rows it has. CLOSED refunds never moved money and are left
// out. m.mu must be held.
func (m *merchant) tradeBill(date, billType string) ([]byte, int) {
	loc := shanghai()
	day := func(t time.Time) string { return t.In(loc).Format(time.DateOnly) }
	clock := func(t time.Time) string { return t.In(loc).Format(time.DateTime) }
	var rows []billRow
	for _, o := range m.orders {
		if o.state != tradeSuccess {
			continue
		}
		if billType != "REFUND" && day(o.successAt) == date {
			rows = append(rows, billRow{at: o.successAt, o: o})
		}
		if billType == "SUCCESS" {
			continue
		}
		for _, r := range o.refunds {
			if r.status != refundClosed && day(r.createdAt) == date {
				rows = append(rows, billRow{at: r.createdAt, o: o, r: r})
			}
		}
	}
	slices.SortFunc(rows, func(a, b billRow) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		ka, kb := a.o.txnID, b.o.txnID
		if a.r != nil {
			ka += a.r.outRefundNo
		}
		if b.r != nil {
			kb += b.r.outRefundNo
		}
		return strings.Compare(ka, kb)
	})

	detail, summary := billColumns(billType)
	sums := map[string]int64{}
	var b strings.Builder
	b.WriteString(strings.Join(detail, ",") + billLineEnd)
	for _, row := range rows {
		o := row.o
		var coupon, noCash int64
		for _, p := range o.promotions {
			coupon += p.Amount
			if p.Type == "NOCASH" {
				noCash += p.Amount
			}
		}
		device := ""
		if o.req.SceneInfo != nil {
			device = o.req.SceneInfo.DeviceID
		}
		f := map[string]string{
			"公众账号ID": o.req.AppID, "商户号": m.cfg.MchID, "特约商户号": "0", "设备号": device, "微信订单号": o.txnID,
			"商户订单号": o.req.OutTradeNo, "用户标识": o.openID, "交易类型": o.tradeType, "付款银行": o.bankType, "货币种类": "CNY",
			"商品名称": o.req.Description, "商户数据包": o.req.Attach, "费率": billFeeRate, "费率备注": "",
		}
		money := map[string]int64{}
		if row.r == nil {
			f["交易时间"], f["交易状态"] = clock(o.successAt), "SUCCESS"
			f["微信退款单号"], f["商户退款单号"], f["退款类型"], f["退款状态"] = "0", "0", "", ""
			money["应结订单金额"], money["代金券金额"], money["订单金额"] = o.total-noCash, coupon, o.total
			money["退款金额"], money["充值券退款金额"], money["申请退款金额"] = 0, 0, 0
			money["手续费"] = fee(o.total - noCash)
		} else {
			r := row.r
			noCashRefund, _, cashRefund := r.settlement()
			f["交易时间"], f["交易状态"] = clock(r.createdAt), "REFUND"
			f["微信退款单号"], f["商户退款单号"], f["退款类型"], f["退款状态"] = r.refundID, r.outRefundNo, "ORIGINAL", billRefundStatus(r.status)
			money["退款金额"], money["充值券退款金额"], money["申请退款金额"] = r.amount-noCashRefund, cashRefund, r.amount
			money["手续费"] = -fee(r.amount - noCashRefund)
			// In the ALL bill a refund row carries no order amounts; the
			// REFUND bill repeats the order's.
			if billType == "REFUND" {
				f["交易时间"] = clock(o.successAt)
				f["退款申请时间"] = clock(r.createdAt)
				f["退款成功时间"] = ""
				if r.status == refundSuccess {
					f["退款成功时间"] = clock(r.successAt)
				}
				money["应结订单金额"], money["代金券金额"], money["订单金额"] = o.total-noCash, coupon, o.total
			} else {
				money["应结订单金额"], money["代金券金额"], money["订单金额"] = 0, 0, 0
			}
		}
		for k, v := range money {
			if k == "手续费" {
				f[k] = feeYuan(v)
			} else {
				f[k] = yuan(v)
			}
		}
		vals := make([]string, len(detail))
		for i, col := range detail {
			vals[i] = "`" + billField(f[col])
			if v, ok := money[col]; ok {
				sums[col] += v
			}
		}
		b.WriteString(strings.Join(vals, ",") + billLineEnd)
	}
	b.WriteString(strings.Join(summary, ",") + billLineEnd)
	vals := make([]string, len(summary))
	for i, col := range summary {
		switch src := billSummarySource(col); {
		case col == "总交易单数":
			vals[i] = "`" + strconv.Itoa(len(rows))
		case src == "手续费":
			vals[i] = "`" + feeYuan(sums[src])
		default:
			vals[i] = "`" + yuan(sums[src])
		}
	}
	b.WriteString(strings.Join(vals, ",") + billLineEnd)
	return []byte(b.String()), len(rows)
}

// checkBillType accepts the bill types the simulator produces.
func checkBillType(billType string) error {
	switch billType {
	case "ALL", "SUCCESS", "REFUND":
		return nil
	case "RECHARGE_REFUND", "ALL_SPECIAL", "SUC_SPECIAL", "REF_SPECIAL":
		return apiErr(http.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在 (the simulator has no %s bills)", billType)
	}
	return paramError("bill_type取值错误 (%q; ALL, SUCCESS, REFUND, RECHARGE_REFUND, ALL_SPECIAL, SUC_SPECIAL, REF_SPECIAL)", billType)
}

// TradeBill returns the trade bill text of a merchant's day (bill_date
// yyyy-MM-dd, Asia/Shanghai; bill_type ALL, SUCCESS or REFUND, "" meaning
// ALL) as the download would serve it uncompressed, whether or not WeChat
// Pay would have generated it yet. Errors: ErrUnknownMerchant, ErrInvalid.
func (s *Sim) TradeBill(mchID, billDate, billType string) ([]byte, error) {
	if billType == "" {
		billType = "ALL"
	}
	if _, err := time.ParseInLocation(time.DateOnly, billDate, shanghai()); err != nil {
		return nil, fmt.Errorf("%w: bill_date %q: %w", ErrInvalid, billDate, err)
	}
	if billType != "ALL" && billType != "SUCCESS" && billType != "REFUND" {
		return nil, fmt.Errorf("%w: bill_type %q (ALL, SUCCESS or REFUND)", ErrInvalid, billType)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	text, _ := m.tradeBill(billDate, billType)
	return text, nil
}

// billRoutes are the /v3/ routes of bills (bill_extras.go wraps them: fund-flow
// bills and bill faults).
func (s *Sim) billRoutes() []route {
	return s.billExtras([]route{
		{method: http.MethodGet, pattern: "/v3/bill/tradebill", handle: s.applyTradeBill},
		{method: http.MethodGet, pattern: "/v3/billdownload/file", handle: s.downloadBill},
	})
}

// billToken is what a download_url carries: the bill asked for, its expiry,
// and a MAC with the merchant's APIv3 key so it cannot be forged.
type billToken struct {
	mchID, date, billType, tarType string
	expires                        int64
}

func (t billToken) encode(key string) string {
	payload := strings.Join([]string{t.mchID, t.date, t.billType, t.tarType, strconv.FormatInt(t.expires, 10)}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + billMAC(key, payload)
}

func billMAC(key, payload string) string {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// parseBillToken decodes a token without checking its MAC.
func parseBillToken(tok string) (billToken, string, string, bool) {
	enc, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return billToken{}, "", "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return billToken{}, "", "", false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 5 {
		return billToken{}, "", "", false
	}
	exp, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return billToken{}, "", "", false
	}
	return billToken{mchID: parts[0], date: parts[1], billType: parts[2], tarType: parts[3], expires: exp}, string(raw), mac, true
}

// apiBase is the scheme and host the request reached, for download_url: the
// listener address the server put in the context (the simulator is served
// on loopback), or WeChat Pay's host when there is none.
func apiBase(ctx context.Context) string {
	if addr, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok && addr != nil {
		return "http://" + addr.String()
	}
	return "https://api.mch.weixin.qq.com"
}

// applyTradeBill is GET /v3/bill/tradebill.
func (s *Sim) applyTradeBill(ctx context.Context, c *call) (reply, error) {
	date := c.query.Get("bill_date")
	d, err := time.ParseInLocation(time.DateOnly, date, shanghai())
	if err != nil {
		return reply{}, paramError("输入源“/query/bill_date”映射到值字段“账单日期”格式错误，应为YYYY-MM-DD (%q)", date)
	}
	billType := c.query.Get("bill_type")
	if billType == "" {
		billType = "ALL"
	}
	if err := checkBillType(billType); err != nil {
		return reply{}, err
	}
	tar := c.query.Get("tar_type")
	if tar != "" && tar != "GZIP" {
		return reply{}, paramError("tar_type取值错误 (%q; GZIP or omitted)", tar)
	}
	now := s.Now().In(shanghai())
	today, _ := time.ParseInLocation(time.DateOnly, now.Format(time.DateOnly), shanghai())
	switch {
	case d.After(today):
		return reply{}, paramError("账单日期不能晚于当前日期 (%s)", date)
	case d.Before(today.AddDate(0, -3, 0)):
		return reply{}, paramError("仅支持下载三个月内的账单 (%s)", date)
	case now.Before(d.AddDate(0, 0, 1).Add(billReadyHour * time.Hour)):
		return reply{}, apiErr(http.StatusBadRequest, "STATEMENT_CREATING", "账单生成中，请在次日%d点后再试 (%s)", billReadyHour, date)
	}
	cfg := c.m.config()
	c.m.mu.Lock()
	text, rows := c.m.tradeBill(date, billType)
	c.m.mu.Unlock()
	if rows == 0 {
		return reply{}, apiErr(http.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在 (no transactions on %s)", date)
	}
	sum := sha1.Sum(text)
	tok := billToken{mchID: c.mchID, date: date, billType: billType, tarType: tar, expires: now.Add(billDownloadLifetime).Unix()}
	u := apiBase(ctx) + "/v3/billdownload/file?token=" + tok.encode(cfg.APIv3Key)
	if tar == "GZIP" {
		u += "&tartype=gzip"
	}
	return reply{status: http.StatusOK, body: map[string]string{"hash_type": "SHA1", "hash_value": hex.EncodeToString(sum[:]),
		"download_url": u}}, nil
}

// downloadBill is GET /v3/billdownload/file: the bill bytes, gzipped when
// the apply asked for GZIP, not signed (6.2).
func (s *Sim) downloadBill(_ context.Context, c *call) (reply, error) {
	raw := c.query.Get("token")
	if raw == "" {
		return reply{}, paramError("输入源“/query/token”映射到值字段“下载令牌”必填性规则校验失败，此字段为必填项")
	}
	tok, payload, mac, ok := parseBillToken(raw)
	if !ok {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "下载链接无效 (malformed token)")
	}
	if tok.mchID != c.mchID {
		return reply{}, apiErr(http.StatusForbidden, "NO_AUTH", "下载账单的商户号与申请账单的商户号不一致")
	}
	cfg := c.m.config()
	if !hmac.Equal([]byte(mac), []byte(billMAC(cfg.APIv3Key, payload))) {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "下载链接无效 (token does not verify)")
	}
	if s.Now().Unix() > tok.expires {
		return reply{}, apiErr(http.StatusBadRequest, "INVALID_REQUEST", "下载链接过期，请重新申请")
	}
	c.m.mu.Lock()
	text, _ := c.m.tradeBill(tok.date, tok.billType)
	c.m.mu.Unlock()
	if tok.tarType != "GZIP" {
		return reply{status: http.StatusOK, raw: &rawReply{contentType: "text/plain; charset=utf-8", data: text}}, nil
	}
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(text); err != nil {
		return reply{}, err
	}
	if err := zw.Close(); err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, raw: &rawReply{contentType: "application/octet-stream", data: b.Bytes()}}, nil
}

// billAdminRoutes are the user-side actions of bills under /sim/.
func (s *Sim) billAdminRoutes() []adminRoute {
	return append([]adminRoute{
		{http.MethodGet, "/sim/bills/tradebill", "a day's trade bill text now, ready or not (?mchid=&bill_date=&bill_type=)", s.adminTradeBill},
	}, s.billExtraAdminRoutes()...)
}

func (s *Sim) adminTradeBill(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	q := r.URL.Query()
	text, err := s.TradeBill(q.Get("mchid"), q.Get("bill_date"), q.Get("bill_type"))
	if err != nil {
		adminFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(text)
}
