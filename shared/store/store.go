// Package store is the persistence contract of the bundle: one table of items
// addressed by a partition and sort key, written with conditions and
// transactions so that state changes and idempotency records can never be
// applied twice.
//
// The contract is written once here and implemented by package ddbstore on
// DynamoDB; package storetest is its conformance suite, run against DynamoDB
// Local in every `make test`. There is deliberately no in-memory
// implementation: conditions, transactions and TTL must behave as DynamoDB's.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinels classify every store failure the callers handle. Adapters
// translate their SDK errors into these; raw SDK errors never reach handlers.
var (
	// ErrNotFound: the addressed item does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrDuplicate: a create found the item already there.
	ErrDuplicate = errors.New("store: duplicate")
	// ErrConflict: a guarded update found the item in another state, or an
	// idempotency key was reused with different content.
	ErrConflict = errors.New("store: conflict")
	// ErrContention: the write lost a race with another transaction or was
	// throttled; retrying the same request is safe.
	ErrContention = errors.New("store: contention, retry")
)

// IdempotencyTTL is how long idempotency and notification records live.
const IdempotencyTTL = 30 * 24 * time.Hour

// Key addresses one item.
type Key struct {
	PK string
	SK string
}

func (k Key) String() string { return k.PK + "|" + k.SK }

// IndexKey is the optional secondary-index key of an item (GSI1), used for
// listing by status/time (sweeps) and by day (reconciliation).
type IndexKey struct {
	PK string
	SK string
}

// Op is one write in a transaction: *Put, *Update, *Check or *Delete.
type Op interface{ key() Key }

// Put writes a whole item. With IfNotExists the write fails with ErrDuplicate
// when the key is taken (the idempotent-create primitive).
type Put struct {
	Key         Key
	Index       IndexKey  // optional
	Expires     time.Time // optional TTL; zero means the item never expires
	Value       any       // struct or map marshalled by the adapter
	IfNotExists bool
}

// Update sets attributes of an item guarded by expectations. A failed guard
// is ErrConflict, or ErrNotFound when the item does not exist.
type Update struct {
	Key   Key
	Set   map[string]any   // attribute -> new value
	Add   map[string]int64 // numeric attribute -> increment
	Index *IndexKey        // optional: move the item in GSI1
	// Expect requires attribute == value for each entry.
	Expect map[string]any
	// ExpectIn requires the attribute to equal one of the values (for
	// "expected prior state is one of ...").
	ExpectIn map[string][]any
	// MustExist fails with ErrNotFound when the item is absent (implied by
	// Expect and ExpectIn). Without it an Update creates the item (upsert).
	MustExist bool
	// ExpectBefore requires the attribute to be absent or less than the
	// value (events ordered by their own timestamps: an older event must not
	// overwrite a newer one).
	ExpectBefore map[string]any
	// AllowMissing makes the guards apply only to an existing item: a missing
	// item is created (for events that arrive before the state they change).
	AllowMissing bool
}

// Check asserts a condition on an item inside a transaction without writing it.
type Check struct {
	Key          Key
	Expect       map[string]any
	MustNotExist bool
	MustExist    bool
}

// Delete removes an item; with MustExist a missing item is ErrNotFound.
type Delete struct {
	Key       Key
	MustExist bool
}

func (p *Put) key() Key    { return p.Key }
func (u *Update) key() Key { return u.Key }
func (c *Check) key() Key  { return c.Key }
func (d *Delete) key() Key { return d.Key }

// KeyOf returns the key an operation addresses.
func KeyOf(op Op) Key { return op.key() }

// ConditionError reports which condition failed and, when the store could
// read it, the item as it was. It unwraps to ErrDuplicate, ErrConflict or
// ErrNotFound.
type ConditionError struct {
	Key  Key
	Kind error // ErrDuplicate, ErrConflict or ErrNotFound
	// Decode unmarshals the current item into out; nil when the item was
	// absent or not returned.
	Decode func(out any) error
}

func (e *ConditionError) Error() string { return fmt.Sprintf("%v: %s", e.Kind, e.Key) }
func (e *ConditionError) Unwrap() error { return e.Kind }

// TxError is a cancelled transaction: Reasons holds one entry per operation,
// nil for operations that would have succeeded. errors.Is(txErr, ErrConflict)
// is true when any reason is a conflict.
type TxError struct {
	Reasons []error
}

func (e *TxError) Error() string {
	var parts []string
	for i, r := range e.Reasons {
		if r != nil {
			parts = append(parts, fmt.Sprintf("op %d: %v", i, r))
		}
	}
	return "store: transaction cancelled: " + strings.Join(parts, "; ")
}

// Unwrap exposes every failed operation's reason to errors.Is and errors.As.
func (e *TxError) Unwrap() []error {
	var out []error
	for _, r := range e.Reasons {
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// Query lists items of one partition, on the table or on GSI1.
type Query struct {
	Index    bool   // query GSI1 instead of the table
	PK       string // partition value
	SKPrefix string // optional begins_with on the sort key
	// SKFrom/SKTo bound the sort key inclusively when set (ignored with SKPrefix).
	SKFrom, SKTo string
	Limit        int32  // page size; 0 means the adapter default
	Descending   bool   // newest first when sort keys are times
	Cursor       string // opaque cursor from a previous page
}

// Store is the contract every adapter implements. The conformance suite in
// package storetest exercises each documented sentinel.
type Store interface {
	// Get reads an item into out (strongly consistent). ErrNotFound if absent.
	Get(ctx context.Context, key Key, out any) error
	// Put writes one item. With IfNotExists: ErrDuplicate (as a
	// *ConditionError holding the existing item) if the key is taken.
	Put(ctx context.Context, p *Put) error
	// PutIdempotent creates the item unless the key exists. An existing item
	// with the same digest attribute is a replay: created is false, err nil,
	// and the stored item is decoded into existing (when non-nil). A different
	// digest is ErrConflict.
	PutIdempotent(ctx context.Context, p *Put, digest string, existing any) (created bool, err error)
	// Update applies a guarded update. ErrConflict or ErrNotFound on a failed guard.
	Update(ctx context.Context, u *Update) error
	// Delete removes an item. ErrNotFound with MustExist on a missing item.
	Delete(ctx context.Context, d *Delete) error
	// Transact applies all operations or none. A cancelled transaction is a
	// *TxError whose reasons use the sentinels above (ErrContention for races).
	Transact(ctx context.Context, ops ...Op) error
	// Query reads one page into out (a pointer to a slice) and returns the
	// cursor of the next page ("" at the end).
	Query(ctx context.Context, q Query, out any) (next string, err error)
}
