// Package domainevent publishes the bundle's domain events (payment
// succeeded, refund closed, coupon sent...) to EventBridge for downstream
// consumers, through a transactional outbox.
//
// Why an outbox and EventBridge rather than a DynamoDB stream: the five
// functions are fixed and a stream needs its own consumer function; with the
// outbox the event is written in the same DynamoDB transaction as the state
// change it describes, so it can't be lost, and it is published right after
// the commit. An event whose publish failed stays in the outbox (GSI1
// partition OUTBOX#PENDING) and Drain publishes it later (at-least-once;
// consumers dedupe on the event id).
package domainevent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ledger"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Source is the EventBridge source of every event.
const Source = "wxpay-serverless"

// Event is one domain event.
type Event struct {
	ID         string          `json:"id" dynamodbav:"id"`                   // unique; the notification id for notify events
	DetailType string          `json:"detail_type" dynamodbav:"detail_type"` // e.g. TRANSACTION.SUCCESS
	Detail     json.RawMessage `json:"detail" dynamodbav:"detail"`
	CreatedAt  string          `json:"created_at" dynamodbav:"created_at"`
}

// Publisher sends events somewhere.
type Publisher interface {
	Publish(ctx context.Context, evs []Event) error
}

// PutEventsAPI is the EventBridge call used.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// EventBridge publishes to one bus.
type EventBridge struct {
	API PutEventsAPI
	Bus string
}

// Publish implements Publisher. A partial failure is an error.
func (p *EventBridge) Publish(ctx context.Context, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	entries := make([]ebtypes.PutEventsRequestEntry, 0, len(evs))
	for _, e := range evs {
		entries = append(entries, ebtypes.PutEventsRequestEntry{
			EventBusName: aws.String(p.Bus), Source: aws.String(Source), DetailType: aws.String(e.DetailType),
			Detail: aws.String(string(e.Detail)), Resources: []string{}})
	}
	out, err := p.API.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err != nil {
		return fmt.Errorf("domainevent: put events: %w", err)
	}
	if out.FailedEntryCount > 0 {
		return fmt.Errorf("domainevent: %d of %d events failed", out.FailedEntryCount, len(evs))
	}
	return nil
}

// OutboxPut is the transaction operation that stores ev in the outbox.
func OutboxPut(ev Event, now time.Time) *store.Put {
	return &store.Put{Key: ledger.OutboxKey(ev.ID), Index: store.IndexKey{PK: ledger.OutboxIndex, SK: ev.CreatedAt + "#" + ev.ID},
		Value: ev, Expires: now.Add(store.IdempotencyTTL), IfNotExists: true}
}

// Flush publishes ev and removes it from the outbox. On a publish failure
// the event stays for Drain and the error is returned for logging only: the
// state change is already committed.
func Flush(ctx context.Context, st store.Store, pub Publisher, ev Event) error {
	if pub == nil {
		return nil
	}
	if err := pub.Publish(ctx, []Event{ev}); err != nil {
		return err
	}
	return st.Delete(ctx, &store.Delete{Key: ledger.OutboxKey(ev.ID)})
}

// Drain publishes up to limit pending events, oldest first, and returns how
// many it published.
func Drain(ctx context.Context, st store.Store, pub Publisher, limit int32) (int, error) {
	var pending []Event
	if _, err := st.Query(ctx, store.Query{Index: true, PK: ledger.OutboxIndex, Limit: limit}, &pending); err != nil {
		return 0, fmt.Errorf("domainevent: drain: %w", err)
	}
	n := 0
	for _, ev := range pending {
		if err := Flush(ctx, st, pub, ev); err != nil {
			return n, fmt.Errorf("domainevent: drain %s: %w", ev.ID, err)
		}
		n++
	}
	return n, nil
}
