package billing

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
)

// BillFile describes one bill file as it was read.
type BillFile struct {
	Kind        string `json:"kind" dynamodbav:"kind"` // tradebill or fundflowbill
	Type        string `json:"type" dynamodbav:"type"` // bill_type ALL / account_type BASIC
	RawKey      string `json:"raw_key,omitempty" dynamodbav:"raw_key,omitempty"`
	RawBytes    int64  `json:"raw_bytes" dynamodbav:"raw_bytes"` // as downloaded (gzip)
	Gzipped     bool   `json:"gzipped" dynamodbav:"gzipped"`
	Bytes       int64  `json:"bytes" dynamodbav:"bytes"` // decompressed
	Rows        int64  `json:"rows" dynamodbav:"rows"`
	SHA1        string `json:"sha1,omitempty" dynamodbav:"sha1,omitempty"`
	HashValue   string `json:"hash_value,omitempty" dynamodbav:"hash_value,omitempty"`
	Verified    bool   `json:"hash_verified" dynamodbav:"hash_verified"`
	NoPrepaid   bool   `json:"no_prepaid_layout,omitempty" dynamodbav:"no_prepaid_layout,omitempty"`
	Columns     int    `json:"columns,omitempty" dynamodbav:"columns,omitempty"`
	NoStatement bool   `json:"no_statement,omitempty" dynamodbav:"no_statement,omitempty"` // NO_STATEMENT_EXIST: WeChat Pay has no bill for the day
}

// StreamOptions configure reading one bill file.
type StreamOptions struct {
	// HashType and HashValue come from the apply answer. Required unless
	// Unverified (the operator command reading a file downloaded by hand).
	HashType, HashValue string
	Unverified          bool
	// Progress is called every ProgressEvery rows (default 250,000).
	Progress      func(rows, bytes int64, elapsed time.Duration)
	ProgressEvery int64
}

// ErrUnverified: a bill without a hash_value to check it against.
var ErrUnverified = errors.New("billing: no hash_value to verify the bill against")

// StreamTradeBill reads a downloaded trade bill into rec in one pass:
// gunzip (when the data is gzip) → SHA-1 of the decompressed bytes →
// header-driven parse → rec, which only buffers the rows. Once the last
// byte is read the SHA-1 is compared with the apply answer's hash_value;
// only then is the bill's summary section handed over. On any error rec
// must be discarded: nothing from the file may be trusted. A parse error is
// reported after the rest of the file was drained, so that the hash (a
// damaged download) wins over the symptom (an odd row).
func StreamTradeBill(src io.Reader, o StreamOptions, rec *reconcile.Reconciler) (*BillFile, error) {
	f := &BillFile{Kind: "tradebill"}
	text, gz, err := bill.Open(src)
	if err != nil {
		return f, err
	}
	f.Gzipped = gz
	dg := bill.NewDigest(text)
	start := time.Now()
	every := o.ProgressEvery
	if every <= 0 {
		every = 250_000
	}
	r, err := bill.NewReader(dg)
	if err == nil {
		f.NoPrepaid, f.Columns = r.NoPrepaidLayout(), len(r.Columns())
		if r.Kind() != bill.KindTrade {
			err = fmt.Errorf("%w: a %s bill where a trade bill was expected", bill.ErrLayout, r.Kind())
		}
	}
	for err == nil {
		var row *bill.TradeRow
		row, err = r.NextTrade()
		if err == io.EOF {
			err = nil
			break
		}
		if err == nil {
			err = rec.AddBillRow(row)
			f.Rows++
			if o.Progress != nil && f.Rows%every == 0 {
				o.Progress(f.Rows, dg.Bytes(), time.Since(start))
			}
		}
	}
	if err := finish(f, dg, o, err); err != nil {
		return f, err
	}
	decl, _ := r.TradeTotals()
	rec.BillSummary("trade", &decl, r.SummaryMismatches())
	return f, nil
}

// finish drains the stream after a failure and verifies the hash.
func finish(f *BillFile, dg *bill.Digest, o StreamOptions, parseErr error) error {
	if parseErr != nil {
		if _, derr := io.Copy(io.Discard, dg); derr != nil {
			f.Bytes = dg.Bytes()
			return errors.Join(derr, parseErr)
		}
	}
	f.Bytes, f.SHA1, f.HashValue = dg.Bytes(), dg.Sum(), o.HashValue
	if o.Unverified && o.HashValue == "" {
		return parseErr
	}
	if o.HashValue == "" {
		return errors.Join(ErrUnverified, parseErr)
	}
	if err := dg.Verify(o.HashType, o.HashValue); err != nil {
		return errors.Join(err, parseErr)
	}
	f.Verified = true
	return parseErr
}

// StreamFundBill reads a downloaded fund-flow bill the same way and
// returns its totals and summary disagreements.
func StreamFundBill(src io.Reader, o StreamOptions) (*BillFile, *reconcile.FundFlow, []bill.SummaryMismatch, error) {
	f := &BillFile{Kind: "fundflowbill"}
	text, gz, err := bill.Open(src)
	if err != nil {
		return f, nil, nil, err
	}
	f.Gzipped = gz
	dg := bill.NewDigest(text)
	r, err := bill.NewReader(dg)
	if err == nil {
		f.Columns = len(r.Columns())
		if r.Kind() != bill.KindFundFlow {
			err = fmt.Errorf("%w: a %s bill where a fund-flow bill was expected", bill.ErrLayout, r.Kind())
		}
	}
	for err == nil {
		_, err = r.NextFund()
		if err == io.EOF {
			err = nil
			break
		}
		if err == nil {
			f.Rows++
		}
	}
	if err := finish(f, dg, o, err); err != nil {
		return f, nil, nil, err
	}
	decl, comp := r.FundTotals()
	return f, &reconcile.FundFlow{Declared: decl, Computed: comp}, r.SummaryMismatches(), nil
}
