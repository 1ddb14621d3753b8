package billing

import (
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
}

// LedgerReader reads the ledger side of a day: paged Queries on the day
// indexes, never one GetItem per row. Find (the reconciler's Lookup) reads
// single rows by key, only for bill rows the indexes do not list.
type LedgerReader struct {
	Store    store.Store
	PageSize int32 // default 500
	Stats    LedgerStats
}

// Load adds every entry of the day's indexes to rec.
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
	for _, kind := range DayKinds() {
		cursor := ""
		for {
			q := store.Query{Index: true, PK: ledger.DayIndex(kind, date), Limit: page, Cursor: cursor}
			var err error
			switch kind {
			case DayKindPay:
				var rows []orderRow
				if cursor, err = l.Store.Query(ctx, q, &rows); err == nil {
					for i := range rows {
						e := reconcile.OrderEntry(&rows[i].Order, day)
						if err = rec.AddLedger(&e); err != nil {
							break
						}
					}
					l.Stats.Items[kind] += len(rows)
				}
			case DayKindPayScore:
				var rows []payScoreRow
				if cursor, err = l.Store.Query(ctx, q, &rows); err == nil {
					for i := range rows {
						var e reconcile.Entry
						if e, err = reconcile.PayScoreEntry(&rows[i].PayScoreOrder, day); err != nil {
							break
						}
						if err = rec.AddLedger(&e); err != nil {
							break
						}
					}
					l.Stats.Items[kind] += len(rows)
				}
			case DayKindRefund:
				var rows []refundRow
				if cursor, err = l.Store.Query(ctx, q, &rows); err == nil {
					for i := range rows {
						e := reconcile.RefundEntry(&rows[i].RefundRecord, day)
						if err = rec.AddLedger(&e); err != nil {
							break
						}
					}
					l.Stats.Items[kind] += len(rows)
				}
			}
			l.Stats.Queries++
			if err != nil {
				return fmt.Errorf("billing: read ledger %s: %w", ledger.DayIndex(kind, date), err)
			}
			if cursor == "" {
				break
			}
		}
	}
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
