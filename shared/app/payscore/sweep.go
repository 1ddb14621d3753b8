package payscore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/domainevent"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// SweepResult is what a sweep run returns (the scheduled invocation's result).
type SweepResult struct {
	Job    string `json:"job"`
	Cutoff string `json:"cutoff"` // orders completed before this were looked at
	// Checked orders were queried at WeChat Pay.
	Checked int `json:"checked"`
	// Settled were found paid (or otherwise final) at WeChat and recorded.
	Settled int `json:"settled"`
	// AlreadySettled had been settled by their callback; they only left
	// the sweep's partition (no WeChat call).
	AlreadySettled int `json:"already_settled"`
	// StillPaying are still being deducted; they are looked at again one
	// SweepAge later.
	StillPaying int `json:"still_paying"`
	// Failed could not be queried or recorded; the next run retries them.
	Failed int `json:"failed"`
	// More is true when the run stopped at SweepLimit or the deadline.
	More bool `json:"more"`
	// OutboxPublished counts domain events whose publish had failed when
	// they were committed (they wait in the outbox) and that this run
	// published; OutboxError says why draining stopped early.
	OutboxPublished int    `json:"outbox_published"`
	OutboxError     string `json:"outbox_error,omitempty"`
}

// outboxBatch and outboxMaxBatches bound one run's outbox drain.
const (
	outboxBatch      = 100
	outboxMaxBatches = 20
)

// drainOutbox publishes the domain events that wait in the outbox (any
// function's: their publish right after the commit failed), in batches,
// until it is empty, the run's deadline nears or the bound is reached. A
// failure is reported in the result and the log, not as the run's error:
// the events stay in the outbox for the next run and the sweep itself
// worked.
func (h *Handler) drainOutbox(ctx context.Context, res *SweepResult) {
	if h.deps.Events == nil {
		return
	}
	for range outboxMaxBatches {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < sweepDeadlineMargin {
			return
		}
		n, err := domainevent.Drain(ctx, h.deps.Store, h.deps.Events, outboxBatch)
		res.OutboxPublished += n
		if err != nil {
			res.OutboxError = err.Error()
			h.log.ErrorContext(ctx, "payscore sweep: drain the domain-event outbox", "published", res.OutboxPublished, "error", err)
			h.deps.Metrics.Count("OutboxDrainFailures", 1, map[string]string{"Function": "payscore"})
			return
		}
		if n < outboxBatch {
			return
		}
	}
}

// sweepDeadlineMargin stops a run early enough to record what it did.
const sweepDeadlineMargin = 3 * time.Second

// ErrSweep is returned when a sweep could not look at any order.
var ErrSweep = errors.New("payscore: sweep failed")

// Sweep settles orders whose PAYSCORE.USER_PAID callback never arrived:
// every order completed more than Config.SweepAge ago and still recorded as
// waiting for payment is queried (O2) and WeChat's answer is recorded. It
// returns an error only when it could not work at all (the ledger query
// failed, or every WeChat query failed), so that the scheduled invocation
// is retried and finally dead-lettered.
func (h *Handler) Sweep(ctx context.Context) (*SweepResult, error) {
	now := h.now()
	cutoff := ledger.WechatTime(now.Add(-h.cfg.SweepAge))
	res := &SweepResult{Job: JobSweep, Cutoff: cutoff}
	var svc service
	haveService := false
	cursor := ""
	for {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < sweepDeadlineMargin {
			res.More = true
			break
		}
		limit := h.cfg.SweepLimit - res.Checked - res.AlreadySettled
		if limit <= 0 {
			res.More = true
			break
		}
		var page []ledger.PayScoreOrder
		next, err := h.deps.Store.Query(ctx, store.Query{Index: true, PK: ledger.PayScoreAwaitingIndex,
			SKTo: cutoff + "#~", Limit: int32(min(limit, 25)), Cursor: cursor}, &page)
		if err != nil {
			return res, fmt.Errorf("%w: list orders awaiting payment: %w", ErrSweep, err)
		}
		for i := range page {
			o := &page[i]
			if o.Terminal() {
				// Settled by its callback: file it under its paid day.
				if err := h.fileSettled(ctx, o, now); err != nil {
					res.Failed++
					h.log.ErrorContext(ctx, "payscore sweep: file settled order", "out_order_no", o.OutOrderNo, "error", err)
					continue
				}
				res.AlreadySettled++
				continue
			}
			if !haveService {
				if svc, err = h.service(ctx); err != nil {
					return res, fmt.Errorf("%w: %w", ErrSweep, err)
				}
				haveService = true
			}
			res.Checked++
			outcome, err := h.sweepOne(ctx, svc, o, now)
			switch {
			case err != nil:
				res.Failed++
				h.log.ErrorContext(ctx, "payscore sweep: order", "out_order_no", o.OutOrderNo, "error", err)
			case outcome == ledger.PayScoreUserPaying:
				res.StillPaying++
			default:
				res.Settled++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	h.drainOutbox(ctx, res)
	h.log.InfoContext(ctx, "payscore sweep", "cutoff", cutoff, "checked", res.Checked, "settled", res.Settled,
		"already_settled", res.AlreadySettled, "still_paying", res.StillPaying, "failed", res.Failed, "more", res.More,
		"outbox_published", res.OutboxPublished)
	if res.Checked > 0 && res.Failed >= res.Checked {
		return res, fmt.Errorf("%w: every one of %d WeChat Pay queries failed", ErrSweep, res.Checked)
	}
	return res, nil
}

// sweepOne queries one order and records the answer. It returns
// USER_PAYING when WeChat is still deducting, the final state otherwise.
func (h *Handler) sweepOne(ctx context.Context, svc service, o *ledger.PayScoreOrder, now time.Time) (string, error) {
	remote, err := h.queryOrder(ctx, svc, o.OutOrderNo)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	got, err := h.applyRemote(ctx, svc, remote)
	if err != nil {
		return "", fmt.Errorf("record: %w", err)
	}
	if got.Terminal() {
		if got.State != ledger.PayScoreDone {
			// REVOKED/EXPIRED never reach applyRemote's day index.
			return got.State, h.fileSettled(ctx, got, now)
		}
		h.log.InfoContext(ctx, "payscore sweep settled a missed callback", "out_order_no", got.OutOrderNo, "state", got.Describe(),
			"transaction_id", got.TransactionID)
		return got.State, nil
	}
	// Still deducting: look again one SweepAge from now.
	err = h.deps.Store.Update(ctx, &store.Update{Key: ledger.PayScoreOrderKey(o.OutOrderNo), Index: awaitingIndex(o.OutOrderNo, now),
		Set: map[string]any{"swept_at": ledger.WechatTime(now)}, Expect: map[string]any{"state": ledger.PayScoreDoing}})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return "", fmt.Errorf("re-file: %w", err)
	}
	return ledger.PayScoreUserPaying, nil
}

// fileSettled moves a final order out of the sweep's partition.
func (h *Handler) fileSettled(ctx context.Context, o *ledger.PayScoreOrder, now time.Time) error {
	err := h.deps.Store.Update(ctx, &store.Update{Key: ledger.PayScoreOrderKey(o.OutOrderNo), Index: settledIndex(o.OutOrderNo, o.PaidTime, now),
		Set: map[string]any{"updated_at": ledger.WechatTime(now)}, Expect: map[string]any{"state": o.State}})
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}
