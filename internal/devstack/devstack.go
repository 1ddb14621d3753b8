// Package devstack prepares the local stack shared by `make dev`, `make
// invoke` and the local tools: DynamoDB Local with the project table, and a
// TEST merchant secret generated once under .local/dev.
package devstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/testkeys"
	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
)

// DefaultTable is the local table name.
const DefaultTable = "wxpay-local"

// DefaultMchID is the local test merchant.
const DefaultMchID = "1900000109"

// Paths are the files under .local/dev.
type Paths struct {
	Dir        string
	KeyBundle  string // all TEST key material (merchant + platform)
	SecretFile string // the merchant secret JSON, the same schema as in Secrets Manager
}

// PathsFor returns the paths under root/.local/dev.
func PathsFor(root string) Paths {
	dir := filepath.Join(root, ".local", "dev")
	return Paths{Dir: dir, KeyBundle: filepath.Join(dir, "test-keys.json"), SecretFile: filepath.Join(dir, "merchant-secret.json")}
}

// EnsureSecret loads or creates the TEST keys and writes the secret file.
func EnsureSecret(root string) (Paths, *testkeys.Merchant, *testkeys.Platform, error) {
	p := PathsFor(root)
	m, pl, err := testkeys.LoadOrCreateBundle(p.KeyBundle, DefaultMchID)
	if err != nil {
		return p, nil, nil, err
	}
	doc, err := testkeys.SecretJSON(m, pl, testkeys.SecretOptions{PublicKey: true, Certificates: true})
	if err != nil {
		return p, nil, nil, err
	}
	if err := os.WriteFile(p.SecretFile, doc, 0o600); err != nil {
		return p, nil, nil, fmt.Errorf("devstack: %w", err)
	}
	return p, m, pl, nil
}

// EnsureTable creates the table on endpoint unless it exists.
func EnsureTable(ctx context.Context, endpoint, table string) error {
	return ddbstore.CreateTable(ctx, ddblocal.Client(endpoint), table)
}
