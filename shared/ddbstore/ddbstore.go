// Package ddbstore implements the store contract on DynamoDB: conditional
// writes, transactions with per-operation cancellation reasons, GSI queries
// with opaque cursors, and TTL. SDK errors are translated here, with
// errors.As on the SDK's modelled exceptions, into the store sentinels.
package ddbstore

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wxpay-serverless/wxpay-serverless/shared/store"
)

// Attribute and index names of the table. template.yaml declares the same
// names; a test keeps the two in step.
const (
	AttrPK        = "pk"
	AttrSK        = "sk"
	AttrGSI1PK    = "gsi1pk"
	AttrGSI1SK    = "gsi1sk"
	AttrExpiresAt = "expires_at" // TTL attribute, epoch seconds
	AttrDigest    = "request_digest"
	IndexGSI1     = "gsi1"
)

// API lists the DynamoDB client methods the store calls (consumer-side
// interface; *dynamodb.Client satisfies it).
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Store is the DynamoDB adapter.
type Store struct {
	db    API
	table string
}

var _ store.Store = (*Store)(nil)

// New returns a store over one table.
func New(db API, table string) *Store { return &Store{db: db, table: table} }

// Table is the table name.
func (s *Store) Table() string { return s.table }

// Ping reads a fixed key to prove the table is reachable with the function's
// permissions. A missing item is success.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: keyAV(store.Key{PK: "HEALTH", SK: "HEALTH"})})
	if err != nil {
		return fmt.Errorf("ddbstore: ping %s: %w", s.table, translate(err))
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key store.Key, out any) error {
	res, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: keyAV(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("ddbstore: get %s: %w", key, translate(err))
	}
	if res.Item == nil {
		return fmt.Errorf("ddbstore: get %s: %w", key, store.ErrNotFound)
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		return fmt.Errorf("ddbstore: decode %s: %w", key, err)
	}
	return nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, p *store.Put) error {
	in, err := s.putInput(p, "")
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		return fmt.Errorf("ddbstore: put %s: %w", p.Key, s.conditionErr(err, p))
	}
	return nil
}

// PutIdempotent implements store.Store.
func (s *Store) PutIdempotent(ctx context.Context, p *store.Put, digest string, existing any) (bool, error) {
	cp := *p
	cp.IfNotExists = true
	in, err := s.putInput(&cp, digest)
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, in)
	if err == nil {
		return true, nil
	}
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return false, fmt.Errorf("ddbstore: put idempotent %s: %w", p.Key, translate(err))
	}
	old := ccf.Item
	if old == nil {
		// DynamoDB always returns the old item with ALL_OLD; read it if not.
		res, gerr := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: keyAV(p.Key), ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return false, fmt.Errorf("ddbstore: put idempotent %s: read existing: %w", p.Key, translate(gerr))
		}
		old = res.Item
	}
	var stored string
	if av, ok := old[AttrDigest].(*types.AttributeValueMemberS); ok {
		stored = av.Value
	}
	if stored != digest {
		return false, fmt.Errorf("ddbstore: put idempotent %s: %w", p.Key, &store.ConditionError{Key: p.Key, Kind: store.ErrConflict, Decode: decoder(old)})
	}
	if existing != nil {
		if err := attributevalue.UnmarshalMap(old, existing); err != nil {
			return false, fmt.Errorf("ddbstore: decode %s: %w", p.Key, err)
		}
	}
	return false, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, u *store.Update) error {
	in, err := s.updateInput(u)
	if err != nil {
		return err
	}
	if _, err := s.db.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("ddbstore: update %s: %w", u.Key, s.conditionErr(err, u))
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, d *store.Delete) error {
	in := &dynamodb.DeleteItemInput{TableName: &s.table, Key: keyAV(d.Key)}
	if d.MustExist {
		in.ConditionExpression = aws.String("attribute_exists(#pk)")
		in.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
	}
	if _, err := s.db.DeleteItem(ctx, in); err != nil {
		return fmt.Errorf("ddbstore: delete %s: %w", d.Key, s.conditionErr(err, d))
	}
	return nil
}

// Transact implements store.Store.
func (s *Store) Transact(ctx context.Context, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	items := make([]types.TransactWriteItem, 0, len(ops))
	for _, op := range ops {
		var item types.TransactWriteItem
		switch o := op.(type) {
		case *store.Put:
			in, err := s.putInput(o, "")
			if err != nil {
				return err
			}
			item.Put = &types.Put{TableName: in.TableName, Item: in.Item, ConditionExpression: in.ConditionExpression,
				ExpressionAttributeNames: in.ExpressionAttributeNames, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
		case *store.Update:
			in, err := s.updateInput(o)
			if err != nil {
				return err
			}
			item.Update = &types.Update{TableName: in.TableName, Key: in.Key, UpdateExpression: in.UpdateExpression,
				ConditionExpression: in.ConditionExpression, ExpressionAttributeNames: in.ExpressionAttributeNames,
				ExpressionAttributeValues: in.ExpressionAttributeValues, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
		case *store.Check:
			cond, names, values, err := checkExpr(o)
			if err != nil {
				return err
			}
			item.ConditionCheck = &types.ConditionCheck{TableName: &s.table, Key: keyAV(o.Key), ConditionExpression: &cond,
				ExpressionAttributeNames: names, ExpressionAttributeValues: values, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
		case *store.Delete:
			d := &types.Delete{TableName: &s.table, Key: keyAV(o.Key), ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
			if o.MustExist {
				d.ConditionExpression = aws.String("attribute_exists(#pk)")
				d.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
			}
			item.Delete = d
		default:
			return fmt.Errorf("ddbstore: transact: unsupported operation %T", op)
		}
		items = append(items, item)
	}
	_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return nil
	}
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return fmt.Errorf("ddbstore: transact: %w", translate(err))
	}
	txErr := &store.TxError{Reasons: make([]error, len(ops))}
	for i, r := range tce.CancellationReasons {
		if i >= len(ops) {
			break
		}
		code := aws.ToString(r.Code)
		switch code {
		case "", "None":
		case "ConditionalCheckFailed":
			txErr.Reasons[i] = classifyCondition(ops[i], r.Item)
		case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
			txErr.Reasons[i] = fmt.Errorf("%s: %w", code, store.ErrContention)
		default:
			txErr.Reasons[i] = fmt.Errorf("ddbstore: %s: %s", code, aws.ToString(r.Message))
		}
	}
	return fmt.Errorf("ddbstore: transact: %w", txErr)
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query, out any) (string, error) {
	pkName, skName := AttrPK, AttrSK
	in := &dynamodb.QueryInput{TableName: &s.table, ScanIndexForward: aws.Bool(!q.Descending)}
	if q.Index {
		pkName, skName = AttrGSI1PK, AttrGSI1SK
		in.IndexName = aws.String(IndexGSI1)
	} else {
		in.ConsistentRead = aws.Bool(true)
	}
	in.ExpressionAttributeNames = map[string]string{"#pk": pkName}
	in.ExpressionAttributeValues = map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: q.PK}}
	cond := "#pk = :pk"
	switch {
	case q.SKPrefix != "":
		cond += " AND begins_with(#sk, :skp)"
		in.ExpressionAttributeNames["#sk"] = skName
		in.ExpressionAttributeValues[":skp"] = &types.AttributeValueMemberS{Value: q.SKPrefix}
	case q.SKFrom != "" && q.SKTo != "":
		cond += " AND #sk BETWEEN :skf AND :skt"
		in.ExpressionAttributeNames["#sk"] = skName
		in.ExpressionAttributeValues[":skf"] = &types.AttributeValueMemberS{Value: q.SKFrom}
		in.ExpressionAttributeValues[":skt"] = &types.AttributeValueMemberS{Value: q.SKTo}
	case q.SKFrom != "":
		cond += " AND #sk >= :skf"
		in.ExpressionAttributeNames["#sk"] = skName
		in.ExpressionAttributeValues[":skf"] = &types.AttributeValueMemberS{Value: q.SKFrom}
	case q.SKTo != "":
		cond += " AND #sk <= :skt"
		in.ExpressionAttributeNames["#sk"] = skName
		in.ExpressionAttributeValues[":skt"] = &types.AttributeValueMemberS{Value: q.SKTo}
	}
	in.KeyConditionExpression = &cond
	if q.Limit > 0 {
		in.Limit = aws.Int32(q.Limit)
	}
	if q.Cursor != "" {
		start, err := decodeCursor(q.Cursor)
		if err != nil {
			return "", err
		}
		in.ExclusiveStartKey = start
	}
	res, err := s.db.Query(ctx, in)
	if err != nil {
		return "", fmt.Errorf("ddbstore: query %s: %w", q.PK, translate(err))
	}
	if err := attributevalue.UnmarshalListOfMaps(res.Items, out); err != nil {
		return "", fmt.Errorf("ddbstore: decode query %s: %w", q.PK, err)
	}
	return encodeCursor(res.LastEvaluatedKey), nil
}

// ErrBadCursor is returned for a cursor the store did not issue.
var ErrBadCursor = errors.New("ddbstore: invalid cursor")

func encodeCursor(k map[string]types.AttributeValue) string {
	if len(k) == 0 {
		return ""
	}
	m := map[string]string{}
	for name, v := range k {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = s.Value
		}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(c string) (map[string]types.AttributeValue, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, ErrBadCursor
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil || len(m) == 0 || len(m) > 4 {
		return nil, ErrBadCursor
	}
	out := map[string]types.AttributeValue{}
	for k, v := range m {
		switch k {
		case AttrPK, AttrSK, AttrGSI1PK, AttrGSI1SK:
			out[k] = &types.AttributeValueMemberS{Value: v}
		default:
			return nil, ErrBadCursor
		}
	}
	return out, nil
}

func keyAV(k store.Key) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		AttrPK: &types.AttributeValueMemberS{Value: k.PK},
		AttrSK: &types.AttributeValueMemberS{Value: k.SK},
	}
}

func (s *Store) putInput(p *store.Put, digest string) (*dynamodb.PutItemInput, error) {
	if p.Key.PK == "" || p.Key.SK == "" {
		return nil, fmt.Errorf("ddbstore: put: empty key %q", p.Key)
	}
	item := map[string]types.AttributeValue{}
	if p.Value != nil {
		var err error
		item, err = attributevalue.MarshalMap(p.Value)
		if err != nil {
			return nil, fmt.Errorf("ddbstore: encode %s: %w", p.Key, err)
		}
	}
	for k, v := range keyAV(p.Key) {
		item[k] = v
	}
	if p.Index.PK != "" {
		item[AttrGSI1PK] = &types.AttributeValueMemberS{Value: p.Index.PK}
		item[AttrGSI1SK] = &types.AttributeValueMemberS{Value: p.Index.SK}
	}
	if !p.Expires.IsZero() {
		item[AttrExpiresAt] = &types.AttributeValueMemberN{Value: strconv.FormatInt(p.Expires.Unix(), 10)}
	}
	if digest != "" {
		item[AttrDigest] = &types.AttributeValueMemberS{Value: digest}
	}
	in := &dynamodb.PutItemInput{TableName: &s.table, Item: item, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if p.IfNotExists {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		in.ExpressionAttributeNames = map[string]string{"#pk": AttrPK}
	}
	return in, nil
}

// exprBuilder numbers placeholders so that attribute names from callers never
// end up inside expressions.
type exprBuilder struct {
	names  map[string]string
	values map[string]types.AttributeValue
	n      int
}

func newExpr() *exprBuilder {
	return &exprBuilder{names: map[string]string{"#pk": AttrPK}, values: map[string]types.AttributeValue{}}
}

func (b *exprBuilder) name(attr string) string {
	b.n++
	ph := "#n" + strconv.Itoa(b.n)
	b.names[ph] = attr
	return ph
}

func (b *exprBuilder) value(v any) (string, error) {
	av, err := attributevalue.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("ddbstore: encode value: %w", err)
	}
	b.n++
	ph := ":v" + strconv.Itoa(b.n)
	b.values[ph] = av
	return ph, nil
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (b *exprBuilder) guards(expect map[string]any, expectIn map[string][]any) ([]string, error) {
	var conds []string
	for _, attr := range sortedKeys(expect) {
		v, err := b.value(expect[attr])
		if err != nil {
			return nil, err
		}
		conds = append(conds, b.name(attr)+" = "+v)
	}
	for _, attr := range sortedKeys(expectIn) {
		vals := expectIn[attr]
		if len(vals) == 0 {
			return nil, fmt.Errorf("ddbstore: ExpectIn %q has no values", attr)
		}
		n := b.name(attr)
		var phs []string
		for _, val := range vals {
			v, err := b.value(val)
			if err != nil {
				return nil, err
			}
			phs = append(phs, v)
		}
		conds = append(conds, n+" IN ("+strings.Join(phs, ", ")+")")
	}
	return conds, nil
}

func (s *Store) updateInput(u *store.Update) (*dynamodb.UpdateItemInput, error) {
	if len(u.Set) == 0 && len(u.Add) == 0 && u.Index == nil {
		return nil, fmt.Errorf("ddbstore: update %s: nothing to update", u.Key)
	}
	b := newExpr()
	var sets, adds []string
	for _, attr := range sortedKeys(u.Set) {
		switch attr {
		case AttrPK, AttrSK:
			return nil, fmt.Errorf("ddbstore: update %s: key attribute %q cannot be set", u.Key, attr)
		}
		v, err := b.value(u.Set[attr])
		if err != nil {
			return nil, err
		}
		sets = append(sets, b.name(attr)+" = "+v)
	}
	if u.Index != nil {
		for attr, val := range map[string]string{AttrGSI1PK: u.Index.PK, AttrGSI1SK: u.Index.SK} {
			v, _ := b.value(val) // strings always marshal
			sets = append(sets, b.name(attr)+" = "+v)
		}
		sort.Strings(sets)
	}
	for _, attr := range sortedKeys(u.Add) {
		v, err := b.value(u.Add[attr])
		if err != nil {
			return nil, err
		}
		adds = append(adds, b.name(attr)+" "+v)
	}
	expr := ""
	if len(sets) > 0 {
		expr = "SET " + strings.Join(sets, ", ")
	}
	if len(adds) > 0 {
		if expr != "" {
			expr += " "
		}
		expr += "ADD " + strings.Join(adds, ", ")
	}
	conds, err := b.guards(u.Expect, u.ExpectIn)
	if err != nil {
		return nil, err
	}
	for _, attr := range sortedKeys(u.ExpectBefore) {
		v, err := b.value(u.ExpectBefore[attr])
		if err != nil {
			return nil, err
		}
		n := b.name(attr)
		conds = append(conds, "(attribute_not_exists("+n+") OR "+n+" < "+v+")")
	}
	switch {
	case u.AllowMissing && len(conds) == 1:
		conds = []string{"attribute_not_exists(#pk) OR " + conds[0]}
	case u.AllowMissing && len(conds) > 1:
		conds = []string{"attribute_not_exists(#pk) OR (" + strings.Join(conds, " AND ") + ")"}
	case u.MustExist || len(conds) > 0:
		conds = append([]string{"attribute_exists(#pk)"}, conds...)
	}
	in := &dynamodb.UpdateItemInput{TableName: &s.table, Key: keyAV(u.Key), UpdateExpression: &expr,
		ExpressionAttributeNames: b.names, ExpressionAttributeValues: b.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld}
	if len(conds) > 0 {
		in.ConditionExpression = aws.String(strings.Join(conds, " AND "))
	} else {
		delete(b.names, "#pk")
	}
	if len(b.values) == 0 {
		in.ExpressionAttributeValues = nil
	}
	return in, nil
}

func checkExpr(c *store.Check) (string, map[string]string, map[string]types.AttributeValue, error) {
	b := newExpr()
	conds, err := b.guards(c.Expect, nil)
	if err != nil {
		return "", nil, nil, err
	}
	switch {
	case c.MustNotExist:
		conds = append([]string{"attribute_not_exists(#pk)"}, conds...)
	case c.MustExist || len(conds) > 0:
		conds = append([]string{"attribute_exists(#pk)"}, conds...)
	default:
		return "", nil, nil, fmt.Errorf("ddbstore: check %s: no condition", c.Key)
	}
	values := b.values
	if len(values) == 0 {
		values = nil
	}
	return strings.Join(conds, " AND "), b.names, values, nil
}

// classifyCondition names the sentinel of a failed condition from the kind of
// operation and whether the item existed.
func classifyCondition(op store.Op, old map[string]types.AttributeValue) error {
	kind := store.ErrConflict
	switch o := op.(type) {
	case *store.Put:
		kind = store.ErrDuplicate
	case *store.Check:
		if o.MustNotExist {
			kind = store.ErrDuplicate
		} else if old == nil {
			kind = store.ErrNotFound
		}
	case *store.Update, *store.Delete:
		if old == nil {
			kind = store.ErrNotFound
		}
	}
	return &store.ConditionError{Key: store.KeyOf(op), Kind: kind, Decode: decoder(old)}
}

func decoder(old map[string]types.AttributeValue) func(any) error {
	if old == nil {
		return nil
	}
	return func(out any) error { return attributevalue.UnmarshalMap(old, out) }
}

func (s *Store) conditionErr(err error, op store.Op) error {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return classifyCondition(op, ccf.Item)
	}
	return translate(err)
}

// translate maps transient SDK errors to store.ErrContention and keeps the
// original error in the chain for logs.
func translate(err error) error {
	var (
		thr  *types.ProvisionedThroughputExceededException
		lim  *types.RequestLimitExceeded
		conf *types.TransactionConflictException
		inpr *types.TransactionInProgressException
	)
	if errors.As(err, &thr) || errors.As(err, &lim) || errors.As(err, &conf) || errors.As(err, &inpr) {
		return fmt.Errorf("%w: %w", store.ErrContention, err)
	}
	var ae interface{ ErrorCode() string }
	if errors.As(err, &ae) && ae.ErrorCode() == "ThrottlingException" {
		return fmt.Errorf("%w: %w", store.ErrContention, err)
	}
	return err
}
