package bill_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/bill/billtest"
)

// FuzzReader feeds arbitrary bytes to the reader. Properties: it never
// panics; every failure is classified (ErrLayout, ErrFormat or ErrAmount,
// with a line number); on success the rows returned are exactly the rows
// counted, line numbers increase, and a refund row's figures come from the
// refund columns.
func FuzzReader(f *testing.F) {
	f.Add([]byte(sampleAll))
	f.Add(billtest.Trade(billtest.Legacy, nil))
	f.Add(billtest.Trade(billtest.RefundOnly, nil))
	f.Add(billtest.FundBill([]billtest.FundRow{{BizName: "交易", Income: true, Amount: 1}}))
	f.Add(genBill(3))
	f.Add([]byte("交易时间,微信订单号,商户订单号,交易类型,交易状态,应结订单金额,代金券金额\n`2026-01-01 00:00:00,`1,`2,`3,`SUCCESS,`1.00,`0\n总交易单数\n`1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := bill.NewReader(bytes.NewReader(data))
		if err != nil {
			classified(t, err)
			return
		}
		var rows, lastLine int64
		for {
			var line int64
			var err error
			if r.Kind() == bill.KindTrade {
				var row *bill.TradeRow
				row, err = r.NextTrade()
				if err == nil {
					line = row.Line
					if !row.HasTotal && row.Total != row.Settlement {
						t.Fatalf("legacy row total %d != settlement %d", row.Total, row.Settlement)
					}
				}
			} else {
				var row *bill.FundRow
				row, err = r.NextFund()
				if err == nil {
					line = row.Line
					if row.Amount < 0 {
						t.Fatalf("negative fund amount %d", row.Amount)
					}
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				classified(t, err)
				return
			}
			if line <= lastLine {
				t.Fatalf("line %d after line %d", line, lastLine)
			}
			lastLine = line
			rows++
		}
		if r.Kind() == bill.KindTrade {
			if _, c := r.TradeTotals(); c.Count != rows {
				t.Fatalf("computed count %d, returned %d rows", c.Count, rows)
			}
		} else if _, c := r.FundTotals(); c.Count != rows || c.IncomeCount+c.ExpenseCount != rows {
			t.Fatalf("fund totals %+v, returned %d rows", c, rows)
		}
		_ = r.SummaryMismatches()
	})
}

func classified(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, bill.ErrLayout) && !errors.Is(err, bill.ErrFormat) && !errors.Is(err, bill.ErrAmount) {
		t.Fatalf("unclassified error: %v", err)
	}
	var pe *bill.ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error without a line: %v", err)
	}
}
