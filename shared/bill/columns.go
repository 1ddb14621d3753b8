package bill

// Column names, mapped to what they mean. Bills are read by header name,
// never by position (wechatpay-apiv3.md 6.3: layouts differ by bill type,
// and enabling no-prepaid (免充值) coupons switches a merchant from the
// legacy layout to the current one from the next day).

// col is a trade-bill column's meaning.
type col int

// Trade-bill detail columns.
const (
	cTime              col = iota // 交易时间
	cAppID                        // 公众账号ID
	cMchID                        // 商户号
	cSubMchID                     // 特约商户号 (子商户号 in v2 files)
	cDevice                       // 设备号
	cTxnID                        // 微信订单号
	cOutTradeNo                   // 商户订单号
	cOpenID                       // 用户标识
	cTradeType                    // 交易类型
	cTradeState                   // 交易状态
	cBank                         // 付款银行
	cCurrency                     // 货币种类
	cSettlement                   // 应结订单金额 (legacy: 总金额)
	cCoupon                       // 代金券金额 (legacy: 企业红包金额, 代金券或立减优惠金额)
	cRefundID                     // 微信退款单号
	cOutRefundNo                  // 商户退款单号
	cRefundAmount                 // 退款金额
	cCashCouponRefund             // 充值券退款金额 (legacy: 企业红包退款金额, 代金券或立减优惠退款金额)
	cRefundType                   // 退款类型
	cRefundStatus                 // 退款状态
	cDescription                  // 商品名称
	cAttach                       // 商户数据包
	cFee                          // 手续费
	cFeeRate                      // 费率
	cTotal                        // 订单金额
	cRefundRequested              // 申请退款金额
	cFeeNote                      // 费率备注
	cRefundApplyTime              // 退款申请时间 (REFUND bills)
	cRefundSuccessTime            // 退款成功时间 (REFUND bills)
	numTradeCols
)

// tradeColumn maps a detail header name to its meaning; legacy names map to
// the current meaning (wechatpay-apiv3.md 6.3 "legacy layout"; S3 WxJava).
func tradeColumn(name string) (col, bool) {
	switch name {
	case "交易时间":
		return cTime, true
	case "公众账号ID":
		return cAppID, true
	case "商户号":
		return cMchID, true
	case "特约商户号", "子商户号":
		return cSubMchID, true
	case "设备号":
		return cDevice, true
	case "微信订单号":
		return cTxnID, true
	case "商户订单号":
		return cOutTradeNo, true
	case "用户标识":
		return cOpenID, true
	case "交易类型":
		return cTradeType, true
	case "交易状态":
		return cTradeState, true
	case "付款银行":
		return cBank, true
	case "货币种类":
		return cCurrency, true
	case "应结订单金额", "总金额":
		return cSettlement, true
	case "代金券金额", "企业红包金额", "代金券或立减优惠金额":
		return cCoupon, true
	case "微信退款单号":
		return cRefundID, true
	case "商户退款单号":
		return cOutRefundNo, true
	case "退款金额":
		return cRefundAmount, true
	case "充值券退款金额", "企业红包退款金额", "代金券或立减优惠退款金额":
		return cCashCouponRefund, true
	case "退款类型":
		return cRefundType, true
	case "退款状态":
		return cRefundStatus, true
	case "商品名称":
		return cDescription, true
	case "商户数据包":
		return cAttach, true
	case "手续费":
		return cFee, true
	case "费率":
		return cFeeRate, true
	case "订单金额":
		return cTotal, true
	case "申请退款金额":
		return cRefundRequested, true
	case "费率备注":
		return cFeeNote, true
	case "退款申请时间":
		return cRefundApplyTime, true
	case "退款成功时间":
		return cRefundSuccessTime, true
	}
	return 0, false
}

// requiredTradeCols must be in every trade bill the reconciler reads.
func requiredTradeCols() []col {
	return []col{cTime, cTxnID, cOutTradeNo, cTradeType, cTradeState, cSettlement, cCoupon}
}

// Trade-bill summary columns.
const (
	sCount            col = iota // 总交易单数
	sSettlement                  // 应结订单总金额 (legacy: 总交易额)
	sRefund                      // 退款总金额 (legacy: 总退款金额)
	sCashCouponRefund            // 充值券退款总金额 (legacy: 总企业红包退款金额, 总代金券或立减优惠退款金额)
	sFee                         // 手续费总金额
	sTotal                       // 订单总金额
	sRefundRequested             // 申请退款总金额
	numTradeSummaryCols
)

func tradeSummaryColumn(name string) (col, bool) {
	switch name {
	case "总交易单数":
		return sCount, true
	case "应结订单总金额", "总交易额":
		return sSettlement, true
	case "退款总金额", "总退款金额":
		return sRefund, true
	case "充值券退款总金额", "总企业红包退款金额", "总代金券或立减优惠退款金额":
		return sCashCouponRefund, true
	case "手续费总金额":
		return sFee, true
	case "订单总金额":
		return sTotal, true
	case "申请退款总金额":
		return sRefundRequested, true
	}
	return 0, false
}

// tradeSummaryName is the current name of a summary column (for reports).
func tradeSummaryName(c col) string {
	return [...]string{"总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额"}[c]
}

// Fund-flow bill detail columns (wechatpay-apiv3.md 6.4).
const (
	fTime       col = iota // 记账时间
	fBizOrderNo            // 微信支付业务单号
	fFlowNo                // 资金流水单号
	fBizName               // 业务名称
	fBizType               // 业务类型
	fDirection             // 收支类型 (收入/支出)
	fAmount                // 收支金额(元)
	fBalance               // 账户结余(元)
	fApplicant             // 资金变更提交申请人
	fNote                  // 备注
	fVoucher               // 业务凭证号
	numFundCols
)

// fundColumn maps a fund-flow header name; both ASCII "(元)" (v3
// downloads) and full-width "（元）" (v2 docs) are accepted.
func fundColumn(name string) (col, bool) {
	switch name {
	case "记账时间":
		return fTime, true
	case "微信支付业务单号":
		return fBizOrderNo, true
	case "资金流水单号":
		return fFlowNo, true
	case "业务名称":
		return fBizName, true
	case "业务类型":
		return fBizType, true
	case "收支类型":
		return fDirection, true
	case "收支金额(元)", "收支金额（元）":
		return fAmount, true
	case "账户结余(元)", "账户结余（元）":
		return fBalance, true
	case "资金变更提交申请人":
		return fApplicant, true
	case "备注":
		return fNote, true
	case "业务凭证号":
		return fVoucher, true
	}
	return 0, false
}

// requiredFundCols must be in every fund-flow bill.
func requiredFundCols() []col { return []col{fTime, fFlowNo, fBizName, fDirection, fAmount} }

// Fund-flow summary columns.
const (
	fsCount        col = iota // 资金流水总笔数
	fsIncomeCount             // 收入笔数
	fsIncome                  // 收入金额
	fsExpenseCount            // 支出笔数
	fsExpense                 // 支出金额
	numFundSummaryCols
)

func fundSummaryColumn(name string) (col, bool) {
	switch name {
	case "资金流水总笔数":
		return fsCount, true
	case "收入笔数":
		return fsIncomeCount, true
	case "收入金额", "收入金额(元)", "收入金额（元）":
		return fsIncome, true
	case "支出笔数":
		return fsExpenseCount, true
	case "支出金额", "支出金额(元)", "支出金额（元）":
		return fsExpense, true
	}
	return 0, false
}

func fundSummaryName(c col) string {
	return [...]string{"资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额"}[c]
}

// maxCols bounds the columns of a layout (27-29 in practice).
const maxCols = 48
