// Package storetest is the conformance suite of the store contract, in the
// manner of testing/fstest: one suite every adapter must pass. It runs
// against ddbstore on DynamoDB Local in every `make test`.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Harness gives the suite a fresh store per subtest and a raw view of the
// TTL attribute (which the typed API does not expose).
type Harness struct {
	// New returns an empty store.
	New func(t *testing.T) store.Store
	// ExpiresAt returns the stored TTL attribute of key (epoch seconds), and
	// whether the table has TTL enabled on it.
	ExpiresAt func(t *testing.T, s store.Store, key store.Key) (epoch int64, ttlEnabled bool)
}

type order struct {
	ID     string `dynamodbav:"id"`
	Status string `dynamodbav:"status"`
	Amount int64  `dynamodbav:"amount"`
	Note   string `dynamodbav:"note,omitempty"`
	Count  int64  `dynamodbav:"count,omitempty"`
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	k := func(id string) store.Key { return store.Key{PK: "ORDER#" + id, SK: "STATE"} }

	t.Run("GetMissing", func(t *testing.T) {
		s := h.New(t)
		var o order
		err := s.Get(ctx, k("none"), &o)
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(missing) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := h.New(t)
		want := order{ID: "o1", Status: "NOTPAY", Amount: 551}
		if err := s.Put(ctx, &store.Put{Key: k("o1"), Value: want}); err != nil {
			t.Fatal(err)
		}
		var got order
		if err := s.Get(ctx, k("o1"), &got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Get = %+v, want %+v", got, want)
		}
	})

	t.Run("CreateDuplicate", func(t *testing.T) {
		s := h.New(t)
		first := order{ID: "o2", Status: "NOTPAY", Amount: 100}
		if err := s.Put(ctx, &store.Put{Key: k("o2"), Value: first, IfNotExists: true}); err != nil {
			t.Fatalf("first create: %v", err)
		}
		err := s.Put(ctx, &store.Put{Key: k("o2"), Value: order{ID: "o2", Status: "SUCCESS", Amount: 999}, IfNotExists: true})
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("second create err = %v, want ErrDuplicate", err)
		}
		var ce *store.ConditionError
		if !errors.As(err, &ce) || ce.Decode == nil {
			t.Fatalf("second create err = %v, want *ConditionError with the existing item", err)
		}
		var existing order
		if err := ce.Decode(&existing); err != nil || existing != first {
			t.Fatalf("existing item = %+v (%v), want %+v", existing, err, first)
		}
		var got order
		if err := s.Get(ctx, k("o2"), &got); err != nil || got != first {
			t.Fatalf("after duplicate create, item = %+v (%v), want unchanged %+v", got, err, first)
		}
	})

	t.Run("PutIdempotent", func(t *testing.T) {
		s := h.New(t)
		v := order{ID: "r1", Status: "PENDING", Amount: 50}
		created, err := s.PutIdempotent(ctx, &store.Put{Key: k("r1"), Value: v}, "digest-a", nil)
		if err != nil || !created {
			t.Fatalf("first PutIdempotent = (%v, %v), want (true, nil)", created, err)
		}
		var replay order
		created, err = s.PutIdempotent(ctx, &store.Put{Key: k("r1"), Value: order{ID: "r1", Status: "OTHER", Amount: 50}}, "digest-a", &replay)
		if err != nil || created {
			t.Fatalf("replay PutIdempotent = (%v, %v), want (false, nil)", created, err)
		}
		if replay != v {
			t.Fatalf("replay returned %+v, want the stored %+v", replay, v)
		}
		_, err = s.PutIdempotent(ctx, &store.Put{Key: k("r1"), Value: order{ID: "r1", Amount: 60}}, "digest-b", nil)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("PutIdempotent with another digest err = %v, want ErrConflict", err)
		}
		var got order
		if err := s.Get(ctx, k("r1"), &got); err != nil || got != v {
			t.Fatalf("item after replays = %+v (%v), want %+v", got, err, v)
		}
	})

	t.Run("ConditionalTransition", func(t *testing.T) {
		s := h.New(t)
		if err := s.Put(ctx, &store.Put{Key: k("o3"), Value: order{ID: "o3", Status: "NOTPAY", Amount: 10}}); err != nil {
			t.Fatal(err)
		}
		move := func(from []any, to string) error {
			return s.Update(ctx, &store.Update{Key: k("o3"), Set: map[string]any{"status": to}, ExpectIn: map[string][]any{"status": from}})
		}
		if err := move([]any{"NOTPAY", "USERPAYING"}, "SUCCESS"); err != nil {
			t.Fatalf("NOTPAY->SUCCESS: %v", err)
		}
		err := move([]any{"NOTPAY"}, "CLOSED")
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("NOTPAY->CLOSED on a SUCCESS order err = %v, want ErrConflict", err)
		}
		var ce *store.ConditionError
		var cur order
		if !errors.As(err, &ce) || ce.Decode == nil || ce.Decode(&cur) != nil || cur.Status != "SUCCESS" {
			t.Fatalf("conflict should carry the current item (status SUCCESS), got %+v from %v", cur, err)
		}
		err = s.Update(ctx, &store.Update{Key: k("missing"), Set: map[string]any{"status": "X"}, Expect: map[string]any{"status": "NOTPAY"}})
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("guarded update of a missing item err = %v, want ErrNotFound", err)
		}
		if err := s.Update(ctx, &store.Update{Key: k("o3"), Add: map[string]int64{"count": 2}}); err != nil {
			t.Fatal(err)
		}
		if err := s.Get(ctx, k("o3"), &cur); err != nil || cur.Status != "SUCCESS" || cur.Count != 2 {
			t.Fatalf("after counter update: %+v (%v), want status SUCCESS count 2", cur, err)
		}
	})

	t.Run("GuardedUpsertAllowMissing", func(t *testing.T) {
		s := h.New(t)
		up := func(id string) error {
			return s.Update(ctx, &store.Update{Key: k(id), Set: map[string]any{"status": "SUCCESS", "amount": 551},
				ExpectIn: map[string][]any{"status": {"NOTPAY", "USERPAYING"}}, AllowMissing: true})
		}
		if err := up("early"); err != nil {
			t.Fatalf("upsert of a missing item: %v", err)
		}
		var got order
		if err := s.Get(ctx, k("early"), &got); err != nil || got.Status != "SUCCESS" || got.Amount != 551 {
			t.Fatalf("created item = %+v (%v)", got, err)
		}
		if err := s.Put(ctx, &store.Put{Key: k("closed"), Value: order{ID: "closed", Status: "CLOSED"}}); err != nil {
			t.Fatal(err)
		}
		if err := up("closed"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("upsert over a CLOSED item err = %v, want ErrConflict", err)
		}
		if err := s.Put(ctx, &store.Put{Key: k("open"), Value: order{ID: "open", Status: "NOTPAY", Note: "keep"}}); err != nil {
			t.Fatal(err)
		}
		if err := up("open"); err != nil {
			t.Fatalf("upsert over a NOTPAY item: %v", err)
		}
		if err := s.Get(ctx, k("open"), &got); err != nil || got.Status != "SUCCESS" || got.Note != "keep" {
			t.Fatalf("updated item = %+v (%v), want SUCCESS with other attributes kept", got, err)
		}
	})

	t.Run("ExpectBeforeOrdersEvents", func(t *testing.T) {
		s := h.New(t)
		set := func(state, at string) error {
			return s.Update(ctx, &store.Update{Key: k("auth"), Set: map[string]any{"status": state, "note": at},
				ExpectBefore: map[string]any{"note": at}, AllowMissing: true})
		}
		if err := set("OPEN", "2026-11-23T10:00:00+08:00"); err != nil {
			t.Fatalf("first event: %v", err)
		}
		if err := set("CLOSED", "2026-11-23T11:00:00+08:00"); err != nil {
			t.Fatalf("newer event: %v", err)
		}
		if err := set("OPEN", "2026-11-23T10:30:00+08:00"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("older event err = %v, want ErrConflict", err)
		}
		var got order
		if err := s.Get(ctx, k("auth"), &got); err != nil || got.Status != "CLOSED" {
			t.Fatalf("state = %+v (%v), want CLOSED from the newest event", got, err)
		}
	})

	t.Run("ConcurrentWritersExactlyOneWins", func(t *testing.T) {
		s := h.New(t)
		for round := 0; round < 10; round++ {
			key := k(fmt.Sprintf("race%d", round))
			if err := s.Put(ctx, &store.Put{Key: key, Value: order{ID: key.PK, Status: "NOTPAY"}}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			start := make(chan struct{})
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					errs[w] = s.Update(ctx, &store.Update{Key: key,
						Set:    map[string]any{"status": "SUCCESS", "note": fmt.Sprintf("writer%d", w)},
						Expect: map[string]any{"status": "NOTPAY"}})
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for w, err := range errs {
				switch {
				case err == nil:
					wins++
				case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrContention):
				default:
					t.Fatalf("round %d writer %d: unexpected error %v", round, w, err)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d writers won (errors %v), want exactly 1", round, wins, errs)
			}
			var got order
			if err := s.Get(ctx, key, &got); err != nil || got.Status != "SUCCESS" || got.Note == "" {
				t.Fatalf("round %d: final item %+v (%v)", round, got, err)
			}
		}
	})

	t.Run("TransactionAllOrNothing", func(t *testing.T) {
		s := h.New(t)
		notif := store.Key{PK: "NOTIFY#EV-1", SK: "NOTIFY"}
		if err := s.Put(ctx, &store.Put{Key: k("o4"), Value: order{ID: "o4", Status: "NOTPAY", Amount: 551}}); err != nil {
			t.Fatal(err)
		}
		apply := func() error {
			return s.Transact(ctx,
				&store.Put{Key: notif, Value: map[string]any{"event_type": "TRANSACTION.SUCCESS"}, IfNotExists: true},
				&store.Update{Key: k("o4"), Set: map[string]any{"status": "SUCCESS"}, Expect: map[string]any{"status": "NOTPAY"}},
			)
		}
		if err := apply(); err != nil {
			t.Fatalf("first transaction: %v", err)
		}
		err := apply()
		var tx *store.TxError
		if !errors.As(err, &tx) {
			t.Fatalf("replayed transaction err = %v, want *TxError", err)
		}
		if len(tx.Reasons) != 2 || !errors.Is(tx.Reasons[0], store.ErrDuplicate) || !errors.Is(tx.Reasons[1], store.ErrConflict) {
			t.Fatalf("reasons = %v, want [ErrDuplicate ErrConflict]", tx.Reasons)
		}
		if !errors.Is(err, store.ErrDuplicate) {
			t.Fatalf("errors.Is(txErr, ErrDuplicate) = false for %v", err)
		}

		// A transaction whose second op fails must not apply its first op.
		fresh := store.Key{PK: "NOTIFY#EV-2", SK: "NOTIFY"}
		err = s.Transact(ctx,
			&store.Put{Key: fresh, Value: map[string]any{"event_type": "TRANSACTION.SUCCESS"}, IfNotExists: true},
			&store.Update{Key: k("o4"), Set: map[string]any{"status": "CLOSED"}, Expect: map[string]any{"status": "NOTPAY"}},
		)
		if !errors.As(err, &tx) || tx.Reasons[0] != nil || !errors.Is(tx.Reasons[1], store.ErrConflict) {
			t.Fatalf("partial transaction err = %v, want reasons [nil ErrConflict]", err)
		}
		var probe map[string]any
		if err := s.Get(ctx, fresh, &probe); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("cancelled transaction wrote its first op: Get err = %v, item %v", err, probe)
		}
		var got order
		if err := s.Get(ctx, k("o4"), &got); err != nil || got.Status != "SUCCESS" {
			t.Fatalf("order after cancelled transaction = %+v (%v), want SUCCESS", got, err)
		}

		// Check and Delete take part in transactions too.
		err = s.Transact(ctx,
			&store.Check{Key: k("o4"), Expect: map[string]any{"status": "SUCCESS"}},
			&store.Delete{Key: notif, MustExist: true},
		)
		if err != nil {
			t.Fatalf("check+delete transaction: %v", err)
		}
		err = s.Transact(ctx, &store.Check{Key: k("nope"), MustExist: true}, &store.Put{Key: notif, Value: map[string]any{"x": 1}})
		if !errors.As(err, &tx) || !errors.Is(tx.Reasons[0], store.ErrNotFound) {
			t.Fatalf("check on a missing item err = %v, want reason ErrNotFound", err)
		}
	})

	t.Run("ConcurrentTransactionsExactlyOneApplies", func(t *testing.T) {
		s := h.New(t)
		if err := s.Put(ctx, &store.Put{Key: k("o5"), Value: order{ID: "o5", Status: "NOTPAY"}}); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.Transact(ctx,
					&store.Put{Key: store.Key{PK: "NOTIFY#EV-5", SK: "NOTIFY"}, Value: map[string]any{"n": i}, IfNotExists: true},
					&store.Update{Key: k("o5"), Add: map[string]int64{"count": 1}, Expect: map[string]any{"status": "NOTPAY"}},
				)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrDuplicate), errors.Is(err, store.ErrContention):
			default:
				t.Fatalf("unexpected error %v", err)
			}
		}
		var got order
		if err := s.Get(ctx, k("o5"), &got); err != nil {
			t.Fatal(err)
		}
		if ok != 1 || got.Count != 1 {
			t.Fatalf("%d transactions succeeded and count=%d, want exactly 1 and 1 (errors %v)", ok, got.Count, errs)
		}
	})

	t.Run("TTLAttribute", func(t *testing.T) {
		s := h.New(t)
		exp := time.Now().Add(store.IdempotencyTTL).Truncate(time.Second)
		key := store.Key{PK: "IDEM#abc", SK: "IDEM"}
		if err := s.Put(ctx, &store.Put{Key: key, Value: map[string]any{"a": 1}, Expires: exp}); err != nil {
			t.Fatal(err)
		}
		epoch, enabled := h.ExpiresAt(t, s, key)
		if !enabled {
			t.Fatal("TTL is not enabled on the table")
		}
		if epoch != exp.Unix() {
			t.Fatalf("expires_at = %d, want %d", epoch, exp.Unix())
		}
		noTTL := store.Key{PK: "ORDER#keep", SK: "STATE"}
		if err := s.Put(ctx, &store.Put{Key: noTTL, Value: map[string]any{"a": 1}}); err != nil {
			t.Fatal(err)
		}
		if epoch, _ := h.ExpiresAt(t, s, noTTL); epoch != 0 {
			t.Fatalf("item without TTL has expires_at = %d", epoch)
		}
	})

	t.Run("QueryIndexPaginated", func(t *testing.T) {
		s := h.New(t)
		base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 25; i++ {
			status := "MCH_COMPLETE"
			if i%5 == 0 {
				status = "DONE"
			}
			at := base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)
			err := s.Put(ctx, &store.Put{Key: k(fmt.Sprintf("q%02d", i)), Index: store.IndexKey{PK: "STATUS#" + status, SK: at},
				Value: order{ID: fmt.Sprintf("q%02d", i), Status: status}})
			if err != nil {
				t.Fatal(err)
			}
		}
		var all []order
		cursor := ""
		pages := 0
		for {
			var page []order
			next, err := s.Query(ctx, store.Query{Index: true, PK: "STATUS#MCH_COMPLETE", Limit: 7, Cursor: cursor}, &page)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, page...)
			pages++
			if next == "" {
				break
			}
			cursor = next
		}
		if len(all) != 20 || pages < 3 {
			t.Fatalf("query returned %d items in %d pages, want 20 in >= 3", len(all), pages)
		}
		for i := 1; i < len(all); i++ {
			if all[i-1].ID >= all[i].ID {
				t.Fatalf("items out of order: %s before %s", all[i-1].ID, all[i].ID)
			}
		}
		var window []order
		if _, err := s.Query(ctx, store.Query{Index: true, PK: "STATUS#MCH_COMPLETE",
			SKTo: base.Add(4 * time.Minute).Format(time.RFC3339)}, &window); err != nil {
			t.Fatal(err)
		}
		if len(window) != 4 { // minutes 1..4 (0 is DONE)
			t.Fatalf("older-than query returned %d items, want 4", len(window))
		}
		if _, err := s.Query(ctx, store.Query{PK: "x", Cursor: "not-a-cursor!"}, &window); err == nil {
			t.Fatal("a forged cursor was accepted")
		}
	})
}
