// Package reconcile compares a day of WeChat Pay's trade bill with the
// merchant's ledger and classifies every difference (see Class).
//
// Both sides are reduced to Entry values (charges keyed by out_trade_no or
// Pay Score out_order_no, refunds keyed by out_refund_no), sorted by key in
// bounded memory (chunks sorted in RAM, spilled to temporary files beyond
// Options.ChunkBytes, merged back) and joined by a single merge. Memory is
// therefore independent of the size of either side: what grows with the day
// is temporary disk, about 60 bytes per entry.
//
// Nothing is concluded from bill rows while they are added: they are
// buffered and summed (the bill totals and the hourly chart), and a row
// that contradicts itself is marked, but no difference is reported. The
// caller verifies the bill's SHA-1 (package bill) before it adds the first
// ledger entry, which seals the bill side.
//
// The ledger is read from key-ordered day indexes, so it is joined while it
// arrives (see AddLedger): a ledger entry in key order is matched with the
// bill's entries of its key right away and never spilled. When the bill has
// one record for the key and it holds the entry's compared values, byte
// for byte, the pair is matched without decoding the record (joinFast):
// most of a clean day. Only what cannot be concluded yet waits for Finish:
// bill keys the ledger passed without listing them, ledger keys the bill
// does not list, and ledger entries that arrived out of order (all three
// usually few). The result is the same as sorting both sides first,
// whatever the order of the ledger.
package reconcile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/bill"
)

// Lookup finds one ledger entry by key, for bill rows the day's index does
// not list (to tell a cross-day or unindexed entry from a missing one). It
// is called only for unmatched rows, at most Options.LookupLimit times.
// The entry's Day is the day the ledger files it under, or NoDay.
type Lookup interface {
	Find(ctx context.Context, kind Kind, key string) (e *Entry, found bool, err error)
}

// Options configure a reconciliation.
type Options struct {
	// Date is the bill date, yyyy-MM-dd (Asia/Shanghai).
	Date string
	// Sink receives every difference; nil counts them only.
	Sink Sink
	// Lookup resolves unmatched bill rows; nil classifies them as missing.
	Lookup Lookup
	// LookupLimit bounds Lookup calls; default 1000.
	LookupLimit int
	// CrossDayWindow: a ledger-only entry this close to the end of the day
	// is classified CrossDay (expect it in the next bill); default 10 min.
	CrossDayWindow time.Duration
	// TempDir holds spilled runs; default os.TempDir().
	TempDir string
	// ChunkBytes is the in-memory chunk of each side; default 8 MiB.
	ChunkBytes int
	// NoLedger validates the bill alone: its rows' identities, duplicates,
	// days, attach fields and summary, without matching a ledger (the
	// operator command's --ledger none).
	NoLedger bool
	// Progress, if set, is called every ProgressEvery entries while merging.
	Progress      func(Progress)
	ProgressEvery int64
}

// Progress reports a running Finish.
type Progress struct {
	Merged  int64 // entries of both sides merged so far
	Elapsed time.Duration
}

// Reconciler holds one day's reconciliation. Add bill rows, verify the
// bill, add ledger entries, then Finish; Close removes temporary files.
type Reconciler struct {
	opts    Options
	day     int64
	bills   *sorter
	ledger  *sorter
	scratch Entry
	sealed  bool

	// Live join state (AddLedger): the bill side's iterator and its
	// current record, the last joined key (in gstr) and whether the bill
	// lists it, the bill records the join passed without a ledger entry
	// (pend, in order), and how many ledger entries arrived out of order.
	live     bool
	bi       recordIter
	bcur     []byte
	gkind    byte
	gkey     []byte // nil before the first entry
	gmatched bool   // the bill lists gkey
	pend     *sorter
	ooo      int64

	ledgerCount int64

	// joinFast's state: the ledger entry's compare block, the bill record
	// it matched, how many pairs it matched; noFast turns it off (tests
	// compare the two paths).
	lblock    []byte
	fastRec   []byte
	fastJoins int64
	noFast    bool

	// Merge state.
	gstr    []byte  // the strings of the group's entries
	eb      []Entry // the group's bill entries
	el      []Entry // the group's ledger entries
	sum     Summary
	lookups int
	started time.Time
	merged  int64
}

// ErrOptions: invalid options.
var ErrOptions = errors.New("reconcile: invalid options")

// New starts a reconciliation of opts.Date.
func New(opts Options) (*Reconciler, error) {
	day, ok := bill.DayOf(opts.Date)
	if !ok {
		return nil, fmt.Errorf("%w: date %q is not yyyy-MM-dd", ErrOptions, opts.Date)
	}
	if opts.LookupLimit == 0 {
		opts.LookupLimit = 1000
	}
	if opts.CrossDayWindow == 0 {
		opts.CrossDayWindow = 10 * time.Minute
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 8 << 20
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 250_000
	}
	r := &Reconciler{opts: opts, day: day, bills: newSorter(opts.TempDir, opts.ChunkBytes), ledger: newSorter(opts.TempDir, opts.ChunkBytes),
		pend: newSorter(opts.TempDir, opts.ChunkBytes)}
	// The ledger entries that reach the sorter are the live join's
	// unmatched keys (in order: appended to a run without sorting) and the
	// entries that arrived out of order (sorted).
	r.ledger.adaptive = true
	r.sum.Date = opts.Date
	r.sum.ByClass = map[Class]int64{}
	return r, nil
}

// AddBillRow buffers one trade-bill row (nothing is concluded from it until
// the ledger arrives).
func (r *Reconciler) AddBillRow(row *bill.TradeRow) error {
	FromTradeRow(row, &r.scratch)
	return r.addBill(&r.scratch)
}

// AddBill buffers one bill entry built by the caller.
func (r *Reconciler) AddBill(e *Entry) error {
	r.scratch = *e
	return r.addBill(&r.scratch)
}

// addBill buffers a bill entry, marked flagCheck when checkIdentity will
// have something to report about it, and adds it to the bill totals and
// the hourly chart (sums, not findings: those wait for the ledger).
func (r *Reconciler) addBill(e *Entry) error {
	e.Flags &^= flagCheck
	if e.Day != r.day || identityProblem(e) != "" {
		e.Flags |= flagCheck
	}
	if err := r.bills.add(e); err != nil {
		return err
	}
	r.countBill(e)
	return nil
}

// AddLedger adds one ledger entry. Day should be the index day the entry
// was read from. The first call seals the bill side, which must have been
// verified by then: from here on bill rows are concluded on.
//
// Entries are best added in (kind, key) order, as the day indexes return
// them: an entry at or after the previous one is joined at once with the
// bill's entries of its key (a key the bill lists is compared and reported
// here, and a repeat of it right after as a duplicate; a key the bill does
// not list waits for Finish). An entry before the previous one is buffered
// and sorted, and Finish joins it with the bill keys the live join passed;
// one that repeats a key the live join matched is reported as a duplicate
// there. e is not retained.
func (r *Reconciler) AddLedger(e *Entry) error {
	if err := checkEntry(e); err != nil {
		return err
	}
	r.ledgerCount++
	if !r.sealed {
		if err := r.startLive(); err != nil {
			return err
		}
	}
	if r.gkey != nil {
		switch c := compareKeys(byte(e.Kind), e.Key, r.gkind, r.gkey); {
		case c < 0:
			r.ooo++
			return r.ledger.add(e)
		case c == 0 && r.gmatched:
			r.count(1)
			r.countLedger(e)
			return r.emit(r.diff(Duplicate, e, SideLedger, "", "", "", 0, "the ledger lists this key twice on the day"))
		case c == 0:
			return r.ledger.add(e)
		}
	}
	return r.join(e)
}

// startLive seals the bill side (a bill that spilled releases its memory)
// and starts reading it in key order.
func (r *Reconciler) startLive() error {
	if err := r.bills.seal(); err != nil {
		return err
	}
	r.sealed, r.live, r.started = true, true, time.Now()
	var err error
	if r.bi, err = r.bills.iterator(); err != nil {
		return err
	}
	r.bcur, err = nextOrNil(r.bi)
	return err
}

// join moves the bill past e's key (bill records before it wait in pend,
// as they are), then classifies e with the bill entries of its key, or,
// when the bill has none, buffers e for Finish (a repeat of its key may
// still arrive out of order).
func (r *Reconciler) join(e *Entry) error {
	kind := byte(e.Kind)
	for r.bcur != nil {
		bk, bkey := recordKey(r.bcur)
		if compareKeys(bk, bkey, kind, e.Key) >= 0 {
			break
		}
		if err := r.pend.appendBody(r.bcur); err != nil {
			return err
		}
		var err error
		if r.bcur, err = nextOrNil(r.bi); err != nil {
			return err
		}
	}
	r.gstr, r.eb, r.el = append(r.gstr[:0], e.Key...), r.eb[:0], r.el[:0]
	r.gkind, r.gkey = kind, r.gstr[:len(e.Key):len(e.Key)]
	if done, err := r.joinFast(e); done || err != nil {
		return err
	}
	var err error
	if r.bcur, err = r.collect(r.bi, r.bcur, kind, r.gkey, &r.eb); err != nil {
		return err
	}
	r.gmatched = len(r.eb) > 0
	if !r.gmatched {
		return r.ledger.add(e)
	}
	// e is used only within this call: its strings are not copied.
	r.el = append(r.el, *e)
	r.count(1)
	// A matched group looks nothing up (only bill-only keys do): no
	// context is needed.
	return r.group(context.Background())
}

// joinFast matches e with the bill's record of its key without decoding
// the record, when that is the key's only record, nothing is to be
// reported about it alone (flagCheck, an invalid attach), and it holds
// e's compare block and trade type: equal values encode to equal bytes,
// so the pair agrees on every field compare looks at, and compare would
// report nothing. Most of a clean day's rows take this path. It reports
// false when the general path must classify e; if it read past the record
// by then, the record is decoded into r.eb and r.bcur is the next one.
func (r *Reconciler) joinFast(e *Entry) (bool, error) {
	if r.bcur == nil || r.noFast || r.opts.NoLedger {
		return false, nil // (NoLedger matches nothing: group decides)
	}
	kind := byte(e.Kind)
	if bk, bkey := recordKey(r.bcur); bk != kind || !bytes.Equal(bkey, e.Key) {
		return false, nil
	}
	flags, block, tradeType, ok := recordCompareParts(r.bcur)
	if !ok || flags&(flagCheck|FlagAttachInvalid) != 0 {
		return false, nil
	}
	r.lblock = appendCompareBlock(r.lblock[:0], e)
	if !bytes.Equal(block, r.lblock) {
		return false, nil
	}
	// compare checks trade types only when both sides have one.
	if len(e.TradeType) > 0 && tradeType[0] != 0 {
		r.lblock = appendString(r.lblock[:0], e.TradeType)
		if !bytes.Equal(tradeType, r.lblock) {
			return false, nil
		}
	}
	// The key's only record? It is kept while the iterator moves on.
	r.fastRec = append(r.fastRec[:0], r.bcur...)
	next, err := nextOrNil(r.bi)
	if err != nil {
		return false, err
	}
	r.bcur = next
	if next != nil {
		if nk, nkey := recordKey(next); nk == kind && bytes.Equal(nkey, e.Key) {
			r.eb = append(r.eb, Entry{})
			r.count(1)
			return false, decodeRecord(r.fastRec, &r.eb[len(r.eb)-1], &r.gstr)
		}
	}
	r.gmatched = true
	r.fastJoins++
	r.count(2)
	r.sum.Matched++
	r.countLedger(e)
	if e.Kind == Charge {
		r.sum.matchedCharges.add(e, e) // the bill's amounts are e's
	}
	return true, nil
}

// count advances the progress count by n merged entries.
func (r *Reconciler) count(n int64) {
	before := r.merged
	r.merged += n
	if r.opts.Progress != nil && before/r.opts.ProgressEvery != r.merged/r.opts.ProgressEvery {
		r.opts.Progress(Progress{Merged: r.merged, Elapsed: time.Since(r.started)})
	}
}

// BillEntries and LedgerEntries count what was added.
func (r *Reconciler) BillEntries() int64 { return r.bills.count }

// LedgerEntries counts the ledger entries added.
func (r *Reconciler) LedgerEntries() int64 { return r.ledgerCount }

// LedgerOutOfOrder counts the ledger entries that arrived before the
// previous one in key order (buffered and sorted instead of joined).
func (r *Reconciler) LedgerOutOfOrder() int64 { return r.ooo }

// MatchedFast counts the pairs the live join matched without decoding the
// bill's record (see joinFast).
func (r *Reconciler) MatchedFast() int64 { return r.fastJoins }

// SpilledBytes is how much went to temporary files.
func (r *Reconciler) SpilledBytes() int64 { return r.bills.spilled + r.ledger.spilled + r.pend.spilled }

// BillSummary records the trade bill's declared summary and its
// disagreements with the rows (bill.Reader.SummaryMismatches); Finish
// reports each as a BillSummary difference.
func (r *Reconciler) BillSummary(source string, declared *bill.TradeTotals, mismatches []bill.SummaryMismatch) {
	if declared != nil {
		d := *declared
		r.sum.BillDeclared = &d
	}
	for _, m := range mismatches {
		r.sum.SummaryMismatches = append(r.sum.SummaryMismatches, SummaryMismatch{Bill: source, SummaryMismatch: m})
	}
}

// FundFlow records the day's fund-flow bill: its totals go into the
// summary, and each disagreement of its summary section with its rows
// becomes a BillSummary difference.
func (r *Reconciler) FundFlow(f *FundFlow, mismatches []bill.SummaryMismatch) {
	r.sum.FundFlow = f
	for _, m := range mismatches {
		r.sum.SummaryMismatches = append(r.sum.SummaryMismatches, SummaryMismatch{Bill: "fundflow", SummaryMismatch: m})
	}
}

// Close removes temporary files.
func (r *Reconciler) Close() error {
	return errors.Join(r.bills.close(), r.ledger.close(), r.pend.close())
}

// Finish merges both sides, sends every difference to the sink and returns
// the summary. Call it only after the bill's hash was verified.
func (r *Reconciler) Finish(ctx context.Context) (*Summary, error) {
	if r.started.IsZero() {
		r.started = time.Now()
	}
	for _, m := range r.sum.SummaryMismatches {
		d := Difference{Class: BillSummary, Kind: "summary", Key: m.Column, Side: SideBill, Field: m.Bill, Detail: "the summary section disagrees with the rows"}
		switch m.Unit {
		case "count":
			d.Bill, d.Ledger = strconv.FormatInt(m.Declared, 10), strconv.FormatInt(m.Computed, 10)
			d.Detail = "declared count vs rows counted"
		case "fee":
			d.Bill, d.Ledger = bill.FormatFee(m.Declared), bill.FormatFee(m.Computed)
			d.Detail = "declared fee total vs sum of the rows"
		default:
			d.Bill, d.Ledger, d.DeltaFen = bill.FormatYuan(m.Declared), bill.FormatYuan(m.Computed), m.Declared-m.Computed
			d.Detail = "declared total vs sum of the rows"
		}
		if err := r.emit(d); err != nil {
			return nil, err
		}
	}
	bi, li, matched, err := r.rest()
	if err != nil {
		return nil, err
	}
	bcur, err := nextOrNil(bi)
	if err != nil {
		return nil, err
	}
	lcur, err := nextOrNil(li)
	if err != nil {
		return nil, err
	}
	var groups int
	for bcur != nil || lcur != nil {
		if groups++; groups%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		var key []byte
		switch {
		case bcur == nil:
			key = lcur
		case lcur == nil:
			key = bcur
		case compareRecords(bcur, lcur) <= 0:
			key = bcur
		default:
			key = lcur
		}
		// The group's key is copied: key points into an iterator's buffer.
		kind, k := recordKey(key)
		r.gstr, r.eb, r.el = append(r.gstr[:0], k...), r.eb[:0], r.el[:0]
		gk := r.gstr[:len(k):len(k)]
		if bcur, err = r.collect(bi, bcur, kind, gk, &r.eb); err != nil {
			return nil, err
		}
		if lcur, err = r.collect(li, lcur, kind, gk, &r.el); err != nil {
			return nil, err
		}
		if len(r.eb) == 0 && matched != nil {
			repeat, err := matched.has(kind, gk)
			if err != nil {
				return nil, err
			}
			if repeat {
				if err := r.repeats(); err != nil {
					return nil, err
				}
				continue
			}
		}
		if err := r.group(ctx); err != nil {
			return nil, err
		}
	}
	r.finishIdentities()
	return &r.sum, nil
}

// rest returns what Finish merges: without a live join, both sides
// whole; after one, the bill records it passed without a ledger entry
// followed by those it did not reach, and the ledger entries it left (keys
// the bill does not list, and entries that arrived out of order). matched,
// set when some arrived out of order, tells keys the live join matched,
// which such an entry can only repeat.
func (r *Reconciler) rest() (bills, ledger recordIter, matched *keySet, err error) {
	if !r.live {
		if bills, err = r.bills.iterator(); err != nil {
			return nil, nil, nil, err
		}
		ledger, err = r.ledger.iterator()
		return bills, ledger, nil, err
	}
	passed, err := r.pend.iterator()
	if err != nil {
		return nil, nil, nil, err
	}
	bills = &concatIter{a: passed, b: r.bi, bfirst: r.bcur, bstarted: r.bcur == nil}
	if ledger, err = r.ledger.iterator(); err != nil {
		return nil, nil, nil, err
	}
	if r.ooo > 0 {
		all, err := r.bills.reread()
		if err != nil {
			return nil, nil, nil, err
		}
		matched = &keySet{it: all}
	}
	return bills, ledger, matched, nil
}

// repeats reports the group's ledger entries, whose key the live join
// matched already, as duplicates.
func (r *Reconciler) repeats() error {
	for i := range r.el {
		l := &r.el[i]
		r.countLedger(l)
		if err := r.emit(r.diff(Duplicate, l, SideLedger, "", "", "", 0, "the ledger lists this key twice on the day")); err != nil {
			return err
		}
	}
	return nil
}

// concatIter yields a's records, then the current record of b (bfirst,
// unless bstarted) and the rest of b: every key of a sorts before b's.
type concatIter struct {
	a, b     recordIter
	adone    bool
	bfirst   []byte
	bstarted bool
}

func (c *concatIter) next() ([]byte, error) {
	if !c.adone {
		rec, err := c.a.next()
		if err != io.EOF {
			return rec, err
		}
		c.adone = true
	}
	if !c.bstarted {
		c.bstarted = true
		return c.bfirst, nil
	}
	if c.b == nil {
		return nil, io.EOF
	}
	return c.b.next()
}

// keySet answers membership of ascending keys in a sorted record stream.
type keySet struct {
	it  recordIter
	cur []byte
	eof bool
}

// has reports whether the stream holds (kind, key); keys must be asked in
// ascending order.
func (k *keySet) has(kind byte, key []byte) (bool, error) {
	for !k.eof {
		if k.cur != nil {
			ck, ckey := recordKey(k.cur)
			if c := compareKeys(ck, ckey, kind, key); c >= 0 {
				return c == 0, nil
			}
		}
		var err error
		if k.cur, err = k.it.next(); err == io.EOF {
			k.eof, k.cur = true, nil
		} else if err != nil {
			return false, err
		}
	}
	return false, nil
}

func nextOrNil(it recordIter) ([]byte, error) {
	b, err := it.next()
	if err == io.EOF {
		return nil, nil
	}
	return b, err
}

// collect decodes every record of the group key (kind, key) into dst and
// returns the first record after them. The entries' strings are copies in
// r.gstr, since the iterator's buffer moves on.
func (r *Reconciler) collect(it recordIter, cur []byte, kind byte, key []byte, dst *[]Entry) ([]byte, error) {
	for cur != nil {
		if k, ck := recordKey(cur); k != kind || !bytes.Equal(ck, key) {
			return cur, nil
		}
		*dst = append(*dst, Entry{})
		if err := decodeRecord(cur, &(*dst)[len(*dst)-1], &r.gstr); err != nil {
			return nil, err
		}
		r.count(1)
		var err error
		if cur, err = nextOrNil(it); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// group classifies the entries of one key.
func (r *Reconciler) group(ctx context.Context) error {
	bills, ledger := r.eb, r.el
	slices.SortFunc(bills, func(a, b Entry) int { return int(a.Line - b.Line) })
	for i := range bills {
		if b := &bills[i]; b.Flags&flagCheck != 0 {
			if err := r.checkIdentity(b); err != nil {
				return err
			}
		}
	}
	for i := range ledger {
		r.countLedger(&ledger[i])
	}

	var primary *Entry
	txns := [][]byte(nil)
	if len(bills) > 0 {
		primary = &bills[0]
		txns = append(txns, primary.TxnID)
		for i := 1; i < len(bills); i++ {
			b := &bills[i]
			payScoreParts := b.Kind == Charge && primary.Flags&FlagPayScore != 0 && b.Flags&FlagPayScore != 0 &&
				!bytes.Equal(b.TxnID, primary.TxnID) && b.Flags&FlagAttachInvalid == 0
			if !payScoreParts {
				if err := r.emit(r.diff(Duplicate, b, SideBill, "", "", "", 0,
					fmt.Sprintf("repeats the %s of bill line %d", b.Kind, primary.Line))); err != nil {
					return err
				}
				continue
			}
			// A Pay Score order collected in several deductions: one AUTH
			// row per transaction, compared with the order as a whole.
			primary.Total += b.Total
			primary.Settlement += b.Settlement
			primary.Coupon += b.Coupon
			primary.NoCash += b.NoCash
			primary.Payer += b.Payer
			txns = append(txns, b.TxnID)
		}
		if primary.Flags&FlagAttachInvalid != 0 {
			if err := r.emit(r.diff(PayScoreAttach, primary, SideBill, "attach", "", "", 0,
				"AUTH row without wxzff|<service order id>|<out_order_no>: it cannot be matched to a Pay Score order")); err != nil {
				return err
			}
			primary = nil
		}
	}
	var led *Entry
	if len(ledger) > 0 {
		led = &ledger[0]
		for i := 1; i < len(ledger); i++ {
			if err := r.emit(r.diff(Duplicate, &ledger[i], SideLedger, "", "", "", 0,
				"the ledger lists this key twice on the day")); err != nil {
				return err
			}
		}
	}
	switch {
	case primary == nil && led == nil, r.opts.NoLedger:
		return nil
	case primary == nil:
		return r.ledgerOnly(led)
	case led == nil:
		return r.billOnly(ctx, primary, txns)
	}
	r.sum.Matched++
	return r.compare(primary, led, txns)
}

// countBill adds a bill entry to the bill totals and the hourly chart.
func (r *Reconciler) countBill(e *Entry) {
	t := &r.sum.Bill
	t.Fee += e.Fee
	hour := ((e.Time + 8*3600) % 86400) / 3600
	if hour < 0 {
		hour += 24
	}
	h := &r.sum.Hourly[hour]
	if e.Kind == Refund {
		t.Refunds++
		t.RefundTotal += e.Total
		t.RefundSettlement += e.Settlement
		t.RefundCashCoupon += e.Coupon
		t.RefundNoCash += e.NoCash
		t.RefundPayer += e.Payer
		h.Refunds++
		h.RefundAmount += e.Total
		return
	}
	t.Charges++
	if e.Flags&FlagPayScore != 0 {
		t.PayScoreCharges++
	}
	t.ChargeTotal += e.Total
	t.ChargeSettlement += e.Settlement
	t.ChargeCoupon += e.Coupon
	t.ChargeNoCash += e.NoCash
	t.ChargePayer += e.Payer
	h.Charges++
	h.ChargeAmount += e.Total
}

func (r *Reconciler) countLedger(e *Entry) {
	t := &r.sum.Ledger
	if e.Kind == Refund {
		if string(e.Status) == StatusClosed {
			return // a closed refund moved no money
		}
		t.Refunds++
		t.RefundTotal += e.Total
		t.RefundSettlement += e.Settlement
		t.RefundCashCoupon += e.Coupon
		t.RefundNoCash += e.NoCash
		t.RefundPayer += e.Payer
		return
	}
	t.Charges++
	if e.Flags&FlagPayScore != 0 {
		t.PayScoreCharges++
	}
	t.ChargeTotal += e.Total
	t.ChargeSettlement += e.Settlement
	t.ChargeCoupon += e.Coupon
	t.ChargeNoCash += e.NoCash
	t.ChargePayer += e.Payer
}

// checkIdentity reports bill rows that contradict themselves, and rows
// whose time falls outside the bill date.
func (r *Reconciler) checkIdentity(b *Entry) error {
	if problem := identityProblem(b); problem != "" {
		if err := r.emit(r.diff(BillIdentity, b, SideBill, "", "", "", 0, problem)); err != nil {
			return err
		}
	}
	if b.Day != r.day {
		return r.emit(r.diff(CrossDay, b, SideBill, "time", bill.FormatTime(b.Time), "", 0,
			fmt.Sprintf("the %s bill lists a %s made on %s", r.opts.Date, b.Kind, bill.FormatDay(b.Day))))
	}
	return nil
}

// identityProblem describes how a bill entry contradicts itself, or is "".
func identityProblem(b *Entry) string {
	var problem string
	if b.Kind == Charge {
		switch {
		case b.Total < 0 || b.Settlement < 0 || b.Coupon < 0:
			problem = "negative amount on a payment row"
		case b.NoCash < 0:
			problem = "应结订单金额 exceeds 订单金额 (订单金额 = 应结订单金额 + 免充值券金额)"
		case b.Coupon < b.NoCash:
			problem = "代金券金额 is below the no-prepaid part 订单金额 − 应结订单金额 (代金券金额 = 充值券金额 + 免充值券金额)"
		case b.Coupon > b.Total:
			problem = "代金券金额 exceeds 订单金额"
		}
	} else {
		switch {
		case b.Total < 0 || b.Settlement < 0 || b.Coupon < 0:
			problem = "negative amount on a refund row"
		case b.NoCash < 0:
			problem = "退款金额 exceeds 申请退款金额"
		case b.Payer < 0:
			problem = "充值券退款金额 exceeds 退款金额"
		}
	}
	return problem
}

func (r *Reconciler) ledgerOnly(l *Entry) error {
	if l.Kind == Refund && string(l.Status) == StatusClosed {
		return nil // closed refunds never moved money; bills leave them out
	}
	dayEnd := (r.day+1)*86400 - 8*3600
	switch {
	case l.Time != 0 && bill.DayNumber(l.Time) != r.day:
		return r.emit(r.diff(CrossDay, l, SideLedger, "time", "", bill.FormatTime(l.Time), 0,
			fmt.Sprintf("filed under %s in the ledger but its WeChat Pay time is on %s", r.opts.Date, bill.FormatDay(bill.DayNumber(l.Time)))))
	case l.Time != 0 && l.Time >= dayEnd-int64(r.opts.CrossDayWindow/time.Second):
		return r.emit(r.diff(CrossDay, l, SideLedger, "time", "", bill.FormatTime(l.Time), 0,
			fmt.Sprintf("not in the %s bill, made within %s of midnight: expect it in the next day's bill", r.opts.Date, r.opts.CrossDayWindow)))
	}
	return r.emit(r.diff(MissingInBill, l, SideLedger, "", "", "", 0, fmt.Sprintf("the ledger has this %s on %s, the bill does not", l.Kind, r.opts.Date)))
}

func (r *Reconciler) billOnly(ctx context.Context, b *Entry, txns [][]byte) error {
	if r.opts.Lookup == nil || r.lookups >= r.opts.LookupLimit {
		detail := "the bill lists this " + b.Kind.String() + ", the ledger's day index does not"
		if r.opts.Lookup != nil {
			detail += fmt.Sprintf(" (not looked up by key: %d lookups already)", r.lookups)
		}
		return r.emit(r.diff(MissingInLedger, b, SideBill, "", "", "", 0, detail))
	}
	r.lookups++
	r.sum.Lookups++
	l, found, err := r.opts.Lookup.Find(ctx, b.Kind, string(b.Key))
	if err != nil {
		return fmt.Errorf("reconcile: look up %s %s: %w", b.Kind, b.Key, err)
	}
	switch {
	case !found:
		return r.emit(r.diff(MissingInLedger, b, SideBill, "", "", "", 0, "the bill lists this "+b.Kind.String()+", the ledger has no such key"))
	case !bytes.Equal(l.Status, b.Status):
		return r.emit(r.diff(StatusMismatch, b, SideBoth, "status", string(b.Status), string(l.Status), 0,
			"not in the ledger's day index: the ledger entry is in another state"))
	case l.Day != NoDay && l.Day != r.day:
		return r.emit(r.diff(CrossDay, b, SideBoth, "day", r.opts.Date, bill.FormatDay(l.Day), 0,
			"the ledger files this "+b.Kind.String()+" under another day"))
	}
	if err := r.emit(r.diff(Unindexed, b, SideLedger, "", "", "", 0, "the ledger has it (found by key) but the day index does not list it")); err != nil {
		return err
	}
	r.sum.Matched++
	return r.compare(b, l, txns)
}

// compare reports every disagreement of a matched pair.
func (r *Reconciler) compare(b, l *Entry, txns [][]byte) error {
	if !bytes.Equal(b.Status, l.Status) {
		if err := r.emit(r.diff(StatusMismatch, b, SideBoth, "status", string(b.Status), string(l.Status), 0, "")); err != nil {
			return err
		}
	}
	if len(l.TxnID) > 0 && len(b.TxnID) > 0 && !slices.ContainsFunc(txns, func(t []byte) bool { return bytes.Equal(t, l.TxnID) }) {
		if err := r.emit(r.diff(ReferenceMismatch, b, SideBoth, "transaction_id", string(b.TxnID), string(l.TxnID), 0, "")); err != nil {
			return err
		}
	}
	if len(l.RefundID) > 0 && len(b.RefundID) > 0 && !bytes.Equal(b.RefundID, l.RefundID) {
		if err := r.emit(r.diff(ReferenceMismatch, b, SideBoth, "refund_id", string(b.RefundID), string(l.RefundID), 0, "")); err != nil {
			return err
		}
	}
	if len(l.OrderNo) > 0 && len(b.OrderNo) > 0 && !bytes.Equal(b.OrderNo, l.OrderNo) &&
		(b.Kind == Charge || l.Flags&FlagOrderRefund != 0) {
		field := "out_trade_no"
		if b.Kind == Charge {
			field = "order_id"
		}
		if err := r.emit(r.diff(ReferenceMismatch, b, SideBoth, field, string(b.OrderNo), string(l.OrderNo), 0, "")); err != nil {
			return err
		}
	}
	if len(l.TradeType) > 0 && len(b.TradeType) > 0 && !bytes.Equal(b.TradeType, l.TradeType) {
		if err := r.emit(r.diff(ReferenceMismatch, b, SideBoth, "trade_type", string(b.TradeType), string(l.TradeType), 0, "")); err != nil {
			return err
		}
	}
	amounts := []struct {
		class Class
		field string
		b, l  int64
	}{
		{AmountTotal, "total", b.Total, l.Total},
		{AmountPayer, "payer", b.Payer, l.Payer},
		{AmountSettlement, "settlement", b.Settlement, l.Settlement},
		{AmountCouponSplit, "coupon", b.Coupon, l.Coupon},
		{AmountCouponSplit, "nocash", b.NoCash, l.NoCash},
	}
	if b.Kind == Refund {
		amounts[3].field = "cash_coupon_refund"
		amounts[4].field = "nocash_refund"
	}
	// The no-prepaid part is stored independently only by payment orders
	// (their promotions); for refunds and Pay Score orders the ledger derives
	// it from the amounts already compared, so it would only repeat them.
	checkNoCash := b.Kind == Charge && l.Flags&FlagPayScore == 0
	split := false
	for i, a := range amounts {
		if a.b == a.l || (a.class == AmountCouponSplit && split) || (i == 4 && !checkNoCash) {
			continue
		}
		split = split || a.class == AmountCouponSplit
		if err := r.emit(r.diff(a.class, b, SideBoth, a.field, bill.FormatYuan(a.b), bill.FormatYuan(a.l), a.b-a.l, "")); err != nil {
			return err
		}
	}
	if b.Kind == Charge {
		r.sum.matchedCharges.add(b, l)
	}
	return nil
}

func (r *Reconciler) diff(c Class, e *Entry, side, field, billV, ledgerV string, delta int64, detail string) Difference {
	d := Difference{Class: c, Kind: e.Kind.String(), Key: string(e.Key), TransactionID: string(e.TxnID), Side: side, Field: field,
		Bill: billV, Ledger: ledgerV, DeltaFen: delta, Detail: detail}
	if side != SideLedger {
		d.Line = e.Line
	}
	return d
}

func (r *Reconciler) emit(d Difference) error {
	r.sum.ByClass[d.Class]++
	r.sum.Differences++
	if r.opts.Sink == nil {
		return nil
	}
	return r.opts.Sink(d)
}
