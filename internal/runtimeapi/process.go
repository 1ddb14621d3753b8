package runtimeapi

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Build compiles ./functions/<fn> of the module at root into out as a
// Lambda `bootstrap` (CGO off, lambda.norpc, trimpath) for goarch on Linux.
func Build(ctx context.Context, root, fn, goarch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, "./functions/"+fn)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("runtimeapi: build %s: %w\n%s", fn, err, b)
	}
	return nil
}

// Process is a bootstrap binary running against its own Runtime API server.
type Process struct {
	*Server
	URL    string // host:port given to the binary
	cmd    *exec.Cmd
	http   *httptest.Server
	output *lockedBuffer
	exited chan struct{}
	err    error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs binary with env (plus AWS_LAMBDA_RUNTIME_API and the usual
// Lambda variables) against a fresh Runtime API on loopback.
func Start(binary string, env []string) (*Process, error) {
	s := New()
	srv := httptest.NewServer(s)
	host := strings.TrimPrefix(srv.URL, "http://")
	p := &Process{Server: s, URL: host, http: srv, output: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(binary)
	p.cmd.Dir = filepath.Dir(binary)
	p.cmd.Env = append([]string{
		"AWS_LAMBDA_RUNTIME_API=" + host,
		"AWS_LAMBDA_FUNCTION_NAME=local",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/local",
		"AWS_LAMBDA_LOG_STREAM_NAME=local",
		"_HANDLER=bootstrap",
	}, env...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("runtimeapi: start %s: %w", binary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed when the process ends; ExitErr is then its Wait error.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitErr is the process's exit error, valid after Exited is closed.
func (p *Process) ExitErr() error { return p.err }

// Output is everything the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// InvokeOrExit is Invoke that also returns when the process dies first.
func (p *Process) InvokeOrExit(ctx context.Context, payload []byte) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	r, err := p.Invoke(ctx, payload)
	if err != nil {
		select {
		case <-p.exited:
			return r, fmt.Errorf("runtimeapi: process exited (%v) before answering: %s", p.err, strings.TrimSpace(p.Output()))
		default:
		}
	}
	return r, err
}

// Stop kills the process group and closes the server.
func (p *Process) Stop() {
	if p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.exited
	p.http.CloseClientConnections()
	p.http.Close()
}
