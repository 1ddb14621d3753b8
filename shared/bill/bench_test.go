package bill_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

// BenchmarkReader: the parser alone over a 20,000-row bill in memory (no
// gunzip, no hash).
func BenchmarkReader(b *testing.B) {
	text := genBill(20000)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, err := bill.NewReader(bytes.NewReader(text))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.NextTrade(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
		}
	}
}
