package wxpaysim

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bill extras (the billing issue): the fund-flow bill (wechatpay-apiv3.md
// 6.4), and bill faults for the reconciliation tests. They wrap the trade
// bill routes of bill.go rather than change them:
//
//   - GET /v3/bill/fundflowbill applies for a day's BASIC fund-flow bill,
//     generated from the merchant's payments (收入, the settlement amount),
//     their fees (支出, 扣除交易手续费) and refunds (支出, 退款) of the day;
//     it downloads through /v3/billdownload/file like the trade bill;
//   - bill faults (SetBillFault): a hash_value that is not the file's, a
//     gzip stream cut in half, and content changes served with a matching
//     hash (an unknown column, a bad amount, a duplicated row, an AUTH row
//     without its wxzff attach), so that only the reader can catch them.

// Bill fault kinds, set with SetBillFault (they are Fault kinds, kept in
// the fault list under a "bill:" subject no API path matches).
const (
	// KindBillHashMismatch: the apply answer's hash_value is not the SHA-1
	// of the file (Count applies).
	KindBillHashMismatch FaultKind = "bill_hash_mismatch"
	// KindBillTruncatedGzip: the download stops halfway through the gzip
	// stream (Count applies).
	KindBillTruncatedGzip FaultKind = "bill_truncated_gzip"
	// KindBillUnknownColumn: the header's 费率备注 becomes 费率说明, a column
	// no layout has; hash_value matches. Until cleared.
	KindBillUnknownColumn FaultKind = "bill_unknown_column"
	// KindBillBadAmount: the first row's 应结订单金额 becomes "1,000.00";
	// hash_value matches. Until cleared.
	KindBillBadAmount FaultKind = "bill_bad_amount"
	// KindBillDuplicateRow: the first detail row is listed twice (the
	// summary counts it); hash_value matches. Until cleared.
	KindBillDuplicateRow FaultKind = "bill_duplicate_row"
	// KindBillAuthAttach: every AUTH row's 商户数据包 loses its wxzff
	// prefix; hash_value matches. Until cleared.
	KindBillAuthAttach FaultKind = "bill_auth_attach"
)

// BillFaultKinds lists the bill fault kinds.
func BillFaultKinds() []FaultKind {
	return []FaultKind{KindBillHashMismatch, KindBillTruncatedGzip, KindBillUnknownColumn, KindBillBadAmount, KindBillDuplicateRow, KindBillAuthAttach}
}

// BillFault is a fault on the bills of one merchant ("" means all).
type BillFault struct {
	MchID string    `json:"mchid"`
	Kind  FaultKind `json:"kind"`
	// Bill is "tradebill" or "fundflowbill"; "" means both.
	Bill string `json:"bill,omitempty"`
	// Count is how many applies (hash) or downloads (truncation) it
	// affects; 0 means until cleared. Content kinds ignore it.
	Count int `json:"count,omitempty"`
}

// billSubject is the fault subject of a bill step: "bill:<bill>:<step>".
func billSubject(billName, step string) string { return "bill:" + billName + ":" + step }

// SetBillFault adds a bill fault. ClearFaults and Reset remove it.
func (s *Sim) SetBillFault(f BillFault) error {
	if !slices.Contains(BillFaultKinds(), f.Kind) {
		return fmt.Errorf("%w: bill fault kind %q (want one of %v)", ErrInvalid, f.Kind, BillFaultKinds())
	}
	if f.Bill != "" && f.Bill != "tradebill" && f.Bill != "fundflowbill" {
		return fmt.Errorf("%w: bill %q (tradebill, fundflowbill or empty)", ErrInvalid, f.Bill)
	}
	prefix := "bill:"
	if f.Bill != "" {
		prefix += f.Bill + ":"
	}
	count := f.Count
	switch f.Kind {
	case KindBillHashMismatch:
		if f.Bill != "" {
			prefix += "apply"
		}
	case KindBillTruncatedGzip:
		if f.Bill != "" {
			prefix += "download"
		}
	default:
		count = 0 // content changes hold until cleared: apply and download must agree
	}
	s.SetFault(Fault{MchID: f.MchID, PathPrefix: prefix, Kind: f.Kind, Count: count})
	return nil
}

// billFaults returns (and consumes, for counted kinds) the bill faults of
// a step. Kinds that do not belong to the step are put back untouched by
// matching only the subject's own faults: hash faults fire on "apply",
// truncation on "download", content kinds on both (never consumed).
func (s *Sim) billFaults(mchID, billName, step string) map[FaultKind]bool {
	out := map[FaultKind]bool{}
	for _, f := range s.peekBillFaults(mchID, billName) {
		switch {
		case f.Kind == KindBillHashMismatch && step != "apply", f.Kind == KindBillTruncatedGzip && step != "download":
			continue
		}
		out[f.Kind] = true
	}
	// Consume the counted ones of this step.
	s.mu.Lock()
	kept := s.faults[:0]
	for _, fs := range s.faults {
		f := fs.f
		fires := (f.Kind == KindBillHashMismatch && step == "apply") || (f.Kind == KindBillTruncatedGzip && step == "download")
		if fires && (f.MchID == "" || f.MchID == mchID) && strings.HasPrefix(billSubject(billName, step), f.PathPrefix) && fs.remaining > 0 {
			fs.remaining--
			if fs.remaining == 0 {
				continue
			}
		}
		kept = append(kept, fs)
	}
	clear(s.faults[len(kept):])
	s.faults = kept
	s.mu.Unlock()
	return out
}

// peekBillFaults lists the bill faults that apply to a merchant's bill.
func (s *Sim) peekBillFaults(mchID, billName string) []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Fault
	for _, fs := range s.faults {
		f := fs.f
		if !slices.Contains(BillFaultKinds(), f.Kind) || (f.MchID != "" && f.MchID != mchID) {
			continue
		}
		if strings.HasPrefix("bill:"+billName+":", f.PathPrefix) || strings.HasPrefix(f.PathPrefix, "bill:"+billName+":") {
			out = append(out, f)
		}
	}
	return out
}

// billExtras wraps bill.go's routes: the trade bill apply answers with the
// (possibly changed) file's hash, the download serves fund-flow bills and
// applies the bill faults, and the fund-flow apply route is added.
func (s *Sim) billExtras(routes []route) []route {
	for i, rt := range routes {
		switch rt.pattern {
		case "/v3/bill/tradebill":
			routes[i].handle = s.wrapTradeApply(rt.handle)
		case "/v3/billdownload/file":
			routes[i].handle = s.wrapDownload(rt.handle)
		}
	}
	return append(routes, route{method: http.MethodGet, pattern: "/v3/bill/fundflowbill", handle: s.applyFundFlowBill})
}

// billExtraAdminRoutes are the admin actions of the extras.
func (s *Sim) billExtraAdminRoutes() []adminRoute {
	return []adminRoute{
		{http.MethodGet, "/sim/bills/fundflowbill", "a day's fund-flow bill text now (?mchid=&bill_date=)", s.adminFundFlowBill},
		{http.MethodPost, "/sim/bills/faults", "corrupt bills {mchid,kind: bill_hash_mismatch|bill_truncated_gzip|bill_unknown_column|bill_bad_amount|bill_duplicate_row|bill_auth_attach,bill?,count?}", s.adminBillFault},
	}
}

func (s *Sim) adminBillFault(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	var f BillFault
	if err := decodeAdmin(r, &f); err != nil {
		adminFail(w, err)
		return
	}
	if err := s.SetBillFault(f); err != nil {
		adminFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Sim) adminFundFlowBill(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	q := r.URL.Query()
	text, err := s.FundFlowBill(q.Get("mchid"), q.Get("bill_date"))
	if err != nil {
		adminFail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(text)
}

// tradeText is the trade bill text as served, bill faults applied. m.mu
// must not be held.
func (s *Sim) tradeText(m *merchant, mchID, date, billType string, faults map[FaultKind]bool) ([]byte, int) {
	m.mu.Lock()
	text, rows := m.tradeBill(date, billType)
	m.mu.Unlock()
	return mutateTradeBill(text, faults), rows
}

func (s *Sim) wrapTradeApply(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (reply, error) {
		if c.m != nil {
			s.syncPayScoreDeductions(c.m)
		}
		rep, err := next(ctx, c)
		if err != nil {
			return rep, err
		}
		body, ok := rep.body.(map[string]string)
		if !ok {
			return rep, nil
		}
		faults := s.billFaults(c.mchID, "tradebill", "apply")
		billType := c.query.Get("bill_type")
		if billType == "" {
			billType = "ALL"
		}
		text, _ := s.tradeText(c.m, c.mchID, c.query.Get("bill_date"), billType, faults)
		sum := sha1.Sum(text)
		body["hash_value"] = hex.EncodeToString(sum[:])
		if faults[KindBillHashMismatch] {
			other := sha1.Sum(append(text, '\n'))
			body["hash_value"] = hex.EncodeToString(other[:])
		}
		return rep, nil
	}
}

func (s *Sim) wrapDownload(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (reply, error) {
		if c.m != nil {
			s.syncPayScoreDeductions(c.m)
		}
		tok, payload, mac, ok := parseBillToken(c.query.Get("token"))
		fund := ok && strings.HasPrefix(tok.billType, "FUNDFLOW:")
		if !fund {
			// The trade bill: bill.go checks the token and serves the file;
			// the faults change what it serves.
			rep, err := next(ctx, c)
			if err != nil || rep.raw == nil {
				return rep, err
			}
			faults := s.billFaults(c.mchID, "tradebill", "download")
			if len(faults) == 0 {
				return rep, nil
			}
			text, _ := s.tradeText(c.m, c.mchID, tok.date, tok.billType, faults)
			return s.serveBill(text, tok.tarType, faults)
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
		faults := s.billFaults(c.mchID, "fundflowbill", "download")
		c.m.mu.Lock()
		text, _ := c.m.fundFlowBill(tok.date)
		c.m.mu.Unlock()
		return s.serveBill(text, tok.tarType, faults)
	}
}

// serveBill renders a download answer: gzipped when asked, cut in half
// under KindBillTruncatedGzip.
func (s *Sim) serveBill(text []byte, tarType string, faults map[FaultKind]bool) (reply, error) {
	if tarType != "GZIP" {
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
	data := b.Bytes()
	if faults[KindBillTruncatedGzip] {
		data = data[:len(data)/2]
	}
	return reply{status: http.StatusOK, raw: &rawReply{contentType: "application/octet-stream", data: data}}, nil
}

// applyFundFlowBill is GET /v3/bill/fundflowbill (wechatpay-apiv3.md 6.1):
// account_type BASIC (the default, UNCONFIRMED; the simulator keeps only
// the basic account), OPERATION and FEES have no statement.
func (s *Sim) applyFundFlowBill(ctx context.Context, c *call) (reply, error) {
	date := c.query.Get("bill_date")
	d, err := time.ParseInLocation(time.DateOnly, date, shanghai())
	if err != nil {
		return reply{}, paramError("输入源“/query/bill_date”映射到值字段“账单日期”格式错误，应为YYYY-MM-DD (%q)", date)
	}
	account := c.query.Get("account_type")
	switch account {
	case "", "BASIC":
		account = "BASIC"
	case "OPERATION", "FEES":
		return reply{}, apiErr(http.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在 (the simulator keeps only the BASIC account)")
	default:
		return reply{}, paramError("account_type取值错误 (%q; BASIC, OPERATION or FEES)", account)
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
	s.syncPayScoreDeductions(c.m)
	faults := s.billFaults(c.mchID, "fundflowbill", "apply")
	c.m.mu.Lock()
	text, rows := c.m.fundFlowBill(date)
	c.m.mu.Unlock()
	if rows == 0 {
		return reply{}, apiErr(http.StatusBadRequest, "NO_STATEMENT_EXIST", "账单文件不存在 (no fund movements on %s)", date)
	}
	sum := sha1.Sum(text)
	if faults[KindBillHashMismatch] {
		sum = sha1.Sum(append(text, '\n'))
	}
	cfg := c.m.config()
	tok := billToken{mchID: c.mchID, date: date, billType: "FUNDFLOW:" + account, tarType: tar, expires: now.Add(billDownloadLifetime).Unix()}
	u := apiBase(ctx) + "/v3/billdownload/file?token=" + tok.encode(cfg.APIv3Key)
	if tar == "GZIP" {
		u += "&tartype=gzip"
	}
	return reply{status: http.StatusOK, body: map[string]string{"hash_type": "SHA1", "hash_value": hex.EncodeToString(sum[:]), "download_url": u}}, nil
}

// FundFlowBill returns a merchant's BASIC fund-flow bill text of a day, as
// the download would serve it uncompressed.
func (s *Sim) FundFlowBill(mchID, billDate string) ([]byte, error) {
	if _, err := time.ParseInLocation(time.DateOnly, billDate, shanghai()); err != nil {
		return nil, fmt.Errorf("%w: bill_date %q: %w", ErrInvalid, billDate, err)
	}
	m, err := s.merchant(mchID)
	if err != nil {
		return nil, err
	}
	s.syncPayScoreDeductions(m)
	m.mu.Lock()
	defer m.mu.Unlock()
	text, _ := m.fundFlowBill(billDate)
	return text, nil
}

// fundFlowBill renders the BASIC account's movements of date: each
// payment credits its settlement amount (total − no-prepaid coupons; a
// prepaid coupon is paid in by its creator), each fee is debited, each
// refund that is not CLOSED debits its settlement refund. m.mu must be held.
func (m *merchant) fundFlowBill(date string) ([]byte, int) {
	loc := shanghai()
	day := func(t time.Time) string { return t.In(loc).Format(time.DateOnly) }
	type move struct {
		at                                         time.Time
		bizNo, name, typ, voucher, note, applicant string
		income                                     bool
		amount                                     int64
	}
	var moves []move
	for _, o := range m.orders {
		if o.state != tradeSuccess {
			continue
		}
		var noCash int64
		for _, p := range o.promotions {
			if p.Type == "NOCASH" {
				noCash += p.Amount
			}
		}
		settlement := o.total - noCash
		if day(o.successAt) == date {
			moves = append(moves, move{at: o.successAt, bizNo: o.txnID, name: "交易", typ: "交易", income: true, amount: settlement,
				voucher: o.req.OutTradeNo, applicant: "系统"})
			if f := fee(settlement); f > 0 {
				moves = append(moves, move{at: o.successAt, bizNo: o.txnID, name: "扣除交易手续费", typ: "手续费", amount: f,
					voucher: o.req.OutTradeNo, applicant: "系统"})
			}
		}
		for _, r := range o.refunds {
			if r.status == refundClosed || day(r.createdAt) != date {
				continue
			}
			noCashRefund, _, _ := r.settlement()
			sr := r.amount - noCashRefund
			moves = append(moves, move{at: r.createdAt, bizNo: r.refundID, name: "退款", typ: "退款", amount: sr, voucher: r.outRefundNo,
				applicant: m.cfg.MchID + "API", note: "退款总金额" + yuan(sr) + "元;含手续费" + yuan(fee(sr)) + "元"})
		}
	}
	slices.SortFunc(moves, func(a, b move) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.bizNo+a.name, b.bizNo+b.name)
	})
	var b strings.Builder
	b.WriteString("记账时间,微信支付业务单号,资金流水单号,业务名称,业务类型,收支类型,收支金额(元),账户结余(元),资金变更提交申请人,备注,业务凭证号" + billLineEnd)
	var balance, in, out, inN, outN int64
	for i, mv := range moves {
		dir := "支出"
		if mv.income {
			dir = "收入"
			balance += mv.amount
			in += mv.amount
			inN++
		} else {
			balance -= mv.amount
			out += mv.amount
			outN++
		}
		flow := fmt.Sprintf("%s%06d", strings.ReplaceAll(date, "-", ""), i+1)
		vals := []string{mv.at.In(loc).Format(time.DateTime), mv.bizNo, flow, mv.name, mv.typ, dir, yuan(mv.amount), yuan(balance),
			mv.applicant, billField(mv.note), mv.voucher}
		b.WriteString("`" + strings.Join(vals, ",`") + billLineEnd)
	}
	b.WriteString("资金流水总笔数,收入笔数,收入金额,支出笔数,支出金额" + billLineEnd)
	b.WriteString("`" + strings.Join([]string{strconv.Itoa(len(moves)), strconv.FormatInt(inN, 10), yuan(in), strconv.FormatInt(outN, 10), yuan(out)}, ",`") + billLineEnd)
	return []byte(b.String()), len(moves)
}

// mutateTradeBill applies the content faults to a trade bill's text.
func mutateTradeBill(text []byte, faults map[FaultKind]bool) []byte {
	if !faults[KindBillUnknownColumn] && !faults[KindBillBadAmount] && !faults[KindBillDuplicateRow] && !faults[KindBillAuthAttach] {
		return text
	}
	lines := strings.Split(strings.TrimSuffix(string(text), billLineEnd), billLineEnd)
	if len(lines) < 3 {
		return text
	}
	header := strings.Split(lines[0], ",")
	col := func(name string) int { return slices.Index(header, name) }
	rows := lines[1 : len(lines)-2]
	if faults[KindBillAuthAttach] {
		tt, at := col("交易类型"), col("商户数据包")
		for i, row := range rows {
			f := strings.Split(row, ",`")
			if tt >= 0 && at >= 0 && f[tt] == "AUTH" {
				f[at] = strings.TrimPrefix(f[at], "wxzff|")
				rows[i] = strings.Join(f, ",`")
			}
		}
	}
	if faults[KindBillDuplicateRow] && len(rows) > 0 {
		rows = append([]string{rows[0]}, rows...)
		lines[len(lines)-1] = resum(header, rows, strings.Split(lines[len(lines)-2], ","))
	}
	if faults[KindBillBadAmount] && len(rows) > 0 {
		if i := col("应结订单金额"); i >= 0 {
			f := strings.Split(rows[0], ",`")
			f[i] = "1,000.00"
			rows[0] = strings.Join(f, ",`")
		}
	}
	if faults[KindBillUnknownColumn] {
		lines[0] = strings.Replace(lines[0], "费率备注", "费率说明", 1)
	}
	out := append([]string{lines[0]}, rows...)
	out = append(out, lines[len(lines)-2], lines[len(lines)-1])
	return []byte(strings.Join(out, billLineEnd) + billLineEnd)
}

// resum recomputes the summary values line from the detail rows.
func resum(header, rows, summary []string) string {
	vals := make([]string, len(summary))
	for i, name := range summary {
		if name == "总交易单数" {
			vals[i] = "`" + strconv.Itoa(len(rows))
			continue
		}
		src := billSummarySource(name)
		c := slices.Index(header, src)
		var sum int64
		for _, row := range rows {
			f := strings.Split(row, ",`")
			if c >= 0 {
				sum += parseYuanText(strings.TrimPrefix(f[c], "`"))
			}
		}
		if src == "手续费" {
			vals[i] = "`" + feeYuanUnits(sum)
		} else {
			vals[i] = "`" + yuan(sum)
		}
	}
	return strings.Join(vals, ",")
}

// parseYuanText reads the simulator's own amounts: yuan with 2 decimals
// (fen) or 5 decimals (fees, in units of 0.00001 yuan).
func parseYuanText(s string) int64 {
	v, _ := strconv.ParseInt(strings.Replace(s, ".", "", 1), 10, 64)
	return v
}

// feeYuanUnits renders 0.00001-yuan units with five decimals.
func feeYuanUnits(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%05d", sign, v/100000, v%100000)
}
