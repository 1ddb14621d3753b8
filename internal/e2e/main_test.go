package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/internal/ddblocal"
	"github.com/wxpay-serverless/wxpay-serverless/internal/lambdatest"
	"github.com/wxpay-serverless/wxpay-serverless/internal/openapi"
	"github.com/wxpay-serverless/wxpay-serverless/internal/stack"
)

func TestMain(m *testing.M) { os.Exit(ddblocal.RunTests(m)) }

// world is one running stack for a test.
type world struct {
	*stack.Stack
	logs  *lambdatest.SyncBuffer
	calls *lambdatest.CallCounter
}

func newWorld(t *testing.T, o stack.Options) *world {
	t.Helper()
	w := &world{logs: &lambdatest.SyncBuffer{}, calls: &lambdatest.CallCounter{}}
	o.DynamoDBEndpoint = os.Getenv(ddblocal.EnvEndpoint)
	o.Table = fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	o.Log = w.logs
	o.DynamoDBOptions = append(o.DynamoDBOptions, w.calls.Option)
	if o.TimeScale == 0 {
		o.TimeScale = 0.001 // WeChat's 15 s retry step becomes 15 ms
	}
	s, err := stack.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	w.Stack = s
	return w
}

// call sends a JSON request through the front door, checks the exchange
// against openapi.yaml (checkAPI) and decodes the answer.
func (w *world) call(t *testing.T, method, path string, in, out any) int {
	t.Helper()
	var body io.Reader
	var sent []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		body, sent = bytes.NewReader(b), b
	}
	req, err := http.NewRequest(method, w.FrontURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	token, err := w.Token(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkAPI(t, method, path, sent, resp, raw)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// apiDocument is openapi.yaml, loaded once for the package's tests.
var apiDocument = sync.OnceValues(func() (*openapi.Document, error) { return openapi.Load("../../openapi.yaml") })

// checkAPI fails the test when an exchange does not match openapi.yaml: an
// undocumented route or status, a response body that violates its schema
// (reported with the JSON path of each violation), or a request the
// handler accepted that the document says is invalid.
func checkAPI(t *testing.T, method, path string, sent []byte, resp *http.Response, raw []byte) {
	t.Helper()
	doc, err := apiDocument()
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	x := openapi.Exchange{Method: method, Path: path, RequestBody: sent, Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err := doc.CheckExchange(x); err != nil {
		t.Errorf("%v\n\tresponse body: %s", err, raw)
	}
}
