package billing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Day-index kinds the ledger files money movements under (GSI1 partition
// ledger.DayIndex(kind, Shanghai day)): paid orders by the day of their
// success_time (notify, payments), settled Pay Score orders by the day of
// their paid_time (payscore), refunds by the day they were requested
// (payments). The sort key is the business key in each, so every page
// comes back in key order.
const (
	DayKindPay      = "PAY"
	DayKindPayScore = ledger.PayScoreDayKind
	DayKindRefund   = "REFUND"
)

// DayKinds lists the day indexes reconciliation reads.
func DayKinds() []string { return []string{DayKindPay, DayKindPayScore, DayKindRefund} }

type orderRow struct {
	ledger.Order
	GSI1PK string `dynamodbav:"gsi1pk"`
}

type payScoreRow struct {
	ledger.PayScoreOrder
	GSI1PK string `dynamodbav:"gsi1pk"`
}

type refundRow struct {
	ledger.RefundRecord
	GSI1PK string `dynamodbav:"gsi1pk"`
}

// LedgerStats counts what reading the ledger cost.
type LedgerStats struct {
	Queries int            `json:"queries"` // paged Query calls on the day indexes
	Gets    int            `json:"gets"`    // GetItem calls of lookups by key
	Items   map[string]int `json:"items"`   // entries read, by day-index kind
	// OutOfOrder counts entries that reached the reconciler out of key
	// order (buffered instead of joined as they came): 0 when the indexes
	// sort as DynamoDB sorts them.
	OutOfOrder int64 `json:"out_of_order"`
	// MatchedFast counts the pairs matched by comparing their encoded
	// values, without decoding the bill's record (reconcile's fast join):
	// on a clean day read in key order, nearly every pair.
	MatchedFast int64 `json:"matched_fast"`
}

// LedgerReader reads the ledger side of a day: paged Queries on the day
// indexes, never one GetItem per row. Find (the reconciler's Lookup) reads
// single rows by key, only for bill rows the indexes do not list.
type LedgerReader struct {
	Store    store.Store
	PageSize int32 // default 500
	Stats    LedgerStats
}

// Load adds every entry of the day's indexes to rec, in key order: the
// reconciler joins entries that arrive in key order while they arrive.
// Each index is read in key order (its sort key is the business key);
// payments and Pay Score orders share the charge key space, so their two
// indexes are merged page by page, and refunds follow.
func (l *LedgerReader) Load(ctx context.Context, date string, rec *reconcile.Reconciler) error {
	day, ok := bill.DayOf(date)
	if !ok {
		return fmt.Errorf("billing: bad date %q", date)
	}
	if l.Stats.Items == nil {
		l.Stats.Items = map[string]int{}
	}
	page := l.PageSize
	if page <= 0 {
		page = 500
	}
	open := func(kind string) *dayStream {
		return &dayStream{l: l, kind: kind, date: date, day: day, page: page}
	}
	pay, payScore, refunds := open(DayKindPay), open(DayKindPayScore), open(DayKindRefund)
	for {
		a, err := pay.peek(ctx)
		if err != nil {
			return err
		}
		b, err := payScore.peek(ctx)
		if err != nil {
			return err
		}
		next := pay
		switch {
		case a == nil && b == nil:
			next = refunds
		case a == nil, b != nil && bytes.Compare(b.Key, a.Key) < 0:
			next = payScore
		}
		e, err := next.peek(ctx)
		if err != nil {
			return err
		}
		if e == nil {
			l.Stats.OutOfOrder, l.Stats.MatchedFast = rec.LedgerOutOfOrder(), rec.MatchedFast()
			return nil
		}
		if err := rec.AddLedger(e); err != nil {
			return err
		}
		next.i++
	}
}

// dayStream reads one day index page by page, in key order.
type dayStream struct {
	l       *LedgerReader
	kind    string
	date    string
	day     int64
	page    int32
	entries []reconcile.Entry
	i       int
	cursor  string
	started bool
}

// peek returns the current entry, reading the next page when the current
// one is used up; nil at the end of the index.
func (s *dayStream) peek(ctx context.Context) (*reconcile.Entry, error) {
	for s.i >= len(s.entries) {
		if s.started && s.cursor == "" {
			return nil, nil
		}
		if err := s.read(ctx); err != nil {
			return nil, fmt.Errorf("billing: read ledger %s: %w", ledger.DayIndex(s.kind, s.date), err)
		}
	}
	return &s.entries[s.i], nil
}

func (s *dayStream) read(ctx context.Context) error {
	q := store.Query{Index: true, PK: ledger.DayIndex(s.kind, s.date), Limit: s.page, Cursor: s.cursor}
	s.started, s.entries, s.i = true, s.entries[:0], 0
	s.l.Stats.Queries++
	switch s.kind {
	case DayKindPay:
		return readPage(ctx, s, q, func(r *orderRow) (reconcile.Entry, error) { return reconcile.OrderEntry(&r.Order, s.day), nil })
	case DayKindPayScore:
		return readPage(ctx, s, q, func(r *payScoreRow) (reconcile.Entry, error) { return reconcile.PayScoreEntry(&r.PayScoreOrder, s.day) })
	case DayKindRefund:
		return readPage(ctx, s, q, func(r *refundRow) (reconcile.Entry, error) { return reconcile.RefundEntry(&r.RefundRecord, s.day), nil })
	}
	return nil
}

// readPage runs one Query page of s's day index into rows of type T and
// appends their entries to s.
func readPage[T any](ctx context.Context, s *dayStream, q store.Query, entry func(*T) (reconcile.Entry, error)) error {
	var rows []T
	var err error
	if s.cursor, err = s.l.Store.Query(ctx, q, &rows); err != nil {
		return err
	}
	for i := range rows {
		e, err := entry(&rows[i])
		if err != nil {
			return err
		}
		s.entries = append(s.entries, e)
	}
	s.l.Stats.Items[s.kind] += len(rows)
	return nil
}

// indexDay is the day an item's GSI1 partition files it under, or NoDay.
func indexDay(gsi1pk, kind string) int64 {
	date, ok := strings.CutPrefix(gsi1pk, "DAY#"+kind+"#")
	if !ok {
		return reconcile.NoDay
	}
	d, ok := bill.DayOf(date)
	if !ok {
		return reconcile.NoDay
	}
	return d
}

// Find reads one ledger entry by key: a payment order, else a Pay Score
// order, for charges; a refund for refunds.
func (l *LedgerReader) Find(ctx context.Context, kind reconcile.Kind, key string) (*reconcile.Entry, bool, error) {
	switch kind {
	case reconcile.Charge:
		var o orderRow
		l.Stats.Gets++
		err := l.Store.Get(ctx, ledger.OrderKey(key), &o)
		if err == nil {
			e := reconcile.OrderEntry(&o.Order, indexDay(o.GSI1PK, DayKindPay))
			return &e, true, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, false, err
		}
		var p payScoreRow
		l.Stats.Gets++
		err = l.Store.Get(ctx, ledger.PayScoreOrderKey(key), &p)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		e, err := reconcile.PayScoreEntry(&p.PayScoreOrder, indexDay(p.GSI1PK, DayKindPayScore))
		if err != nil {
			return nil, false, err
		}
		return &e, true, nil
	case reconcile.Refund:
		var r refundRow
		l.Stats.Gets++
		err := l.Store.Get(ctx, ledger.RefundKey(key), &r)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		e := reconcile.RefundEntry(&r.RefundRecord, indexDay(r.GSI1PK, DayKindRefund))
		return &e, true, nil
	}
	return nil, false, fmt.Errorf("billing: unknown entry kind %v", kind)
}
