package ddbstore_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
	"github.com/wxpay-serverless/wxpay-serverless/shared/storetest"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

type tableStore struct {
	*ddbstore.Store
	db *dynamodb.Client
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) store.Store {
			db, table := ddblocal.NewTable(t)
			return tableStore{Store: ddbstore.New(db, table), db: db}
		},
		ExpiresAt: func(t *testing.T, s store.Store, key store.Key) (int64, bool) {
			ts := s.(tableStore)
			ctx := context.Background()
			ttl, err := ts.db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(ts.Table())})
			if err != nil {
				t.Fatal(err)
			}
			enabled := ttl.TimeToLiveDescription.TimeToLiveStatus == types.TimeToLiveStatusEnabled &&
				aws.ToString(ttl.TimeToLiveDescription.AttributeName) == ddbstore.AttrExpiresAt
			res, err := ts.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(ts.Table()), Key: map[string]types.AttributeValue{
				ddbstore.AttrPK: &types.AttributeValueMemberS{Value: key.PK}, ddbstore.AttrSK: &types.AttributeValueMemberS{Value: key.SK}}})
			if err != nil {
				t.Fatal(err)
			}
			n, ok := res.Item[ddbstore.AttrExpiresAt].(*types.AttributeValueMemberN)
			if !ok {
				return 0, enabled
			}
			epoch, err := strconv.ParseInt(n.Value, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return epoch, enabled
		},
	})
}

func TestPing(t *testing.T) {
	db, table := ddblocal.NewTable(t)
	if err := ddbstore.New(db, table).Ping(context.Background()); err != nil {
		t.Fatalf("Ping on an existing table: %v", err)
	}
	if err := ddbstore.New(db, table+"-missing").Ping(context.Background()); err == nil {
		t.Fatal("Ping on a missing table succeeded")
	}
}

// BenchmarkConditionalCreate measures one idempotent create (PutItem with
// attribute_not_exists) against DynamoDB Local: the floor cost of every
// exactly-once write the bundle makes.
func BenchmarkConditionalCreate(b *testing.B) {
	db, table := ddblocal.NewTable(b)
	s := ddbstore.New(db, table)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := s.Put(ctx, &store.Put{Key: store.Key{PK: "BENCH#" + strconv.Itoa(i), SK: "STATE"}, Value: map[string]any{"status": "NOTPAY", "amount": 551}, IfNotExists: true})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransactNotification measures the notification-shaped transaction:
// a dedupe record created and a guarded state change, all or nothing.
func BenchmarkTransactNotification(b *testing.B) {
	db, table := ddblocal.NewTable(b)
	s := ddbstore.New(db, table)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := strconv.Itoa(i)
		err := s.Transact(ctx,
			&store.Put{Key: store.Key{PK: "NOTIFY#EV-" + id, SK: "NOTIFY"}, Value: map[string]any{"event_type": "TRANSACTION.SUCCESS"}, IfNotExists: true},
			&store.Update{Key: store.Key{PK: "ORDER#" + id, SK: "STATE"}, Set: map[string]any{"status": "SUCCESS"}},
		)
		if err != nil {
			b.Fatal(err)
		}
	}
}
