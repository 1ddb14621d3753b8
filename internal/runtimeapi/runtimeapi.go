// Package runtimeapi is a minimal local implementation of the AWS Lambda
// Runtime API (2018-06-01): enough to run a real `bootstrap` binary the way
// Lambda does — GET next invocation, POST response or error, POST init error.
// The Runtime Interface Emulator cannot be installed here; this stands in for
// it in tests, `make invoke` and the cold-start benchmark.
package runtimeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

const prefix = "/2018-06-01/runtime/"

// Result is the outcome of one invocation.
type Result struct {
	RequestID string
	Payload   []byte        // the function's response (when Err is nil)
	Err       *InvokeError  // the function's error report
	Duration  time.Duration // from delivery to the runtime until its answer
}

// InvokeError is the body the runtime posts to the error endpoints.
type InvokeError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func (e *InvokeError) Error() string { return e.Type + ": " + e.Message }

// ErrInit is returned by Invoke after the runtime reported an init error.
var ErrInit = errors.New("runtimeapi: function init failed")

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	sent     time.Time
	done     chan Result
}

// Server is the Runtime API. Use it as an http.Handler (httptest.NewServer)
// and point the runtime at its host:port via AWS_LAMBDA_RUNTIME_API.
type Server struct {
	FunctionARN string
	Timeout     time.Duration // per invocation deadline, default 30s

	queue   chan *invocation
	mu      sync.Mutex
	pending map[string]*invocation
	seq     int
	initErr *InvokeError
	initCh  chan struct{}
	once    sync.Once
}

// New returns an idle server.
func New() *Server {
	return &Server{
		FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:local",
		Timeout:     30 * time.Second,
		queue:       make(chan *invocation, 64),
		pending:     map[string]*invocation{},
		initCh:      make(chan struct{}),
	}
}

// Invoke queues an event and waits for the runtime's answer.
func (s *Server) Invoke(ctx context.Context, payload []byte) (Result, error) {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("00000000-0000-4000-8000-%012d", s.seq)
	inv := &invocation{id: id, payload: payload, deadline: time.Now().Add(s.Timeout), done: make(chan Result, 1)}
	s.pending[id] = inv
	s.mu.Unlock()
	select {
	case s.queue <- inv:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	select {
	case r := <-inv.done:
		return r, nil
	case <-s.initCh:
		return Result{}, fmt.Errorf("%w: %v", ErrInit, s.initErr)
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// ServeHTTP implements the Runtime API endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && path == "invocation/next":
		s.next(w, r)
	case r.Method == http.MethodPost && path == "init/error":
		var e InvokeError
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&e)
		s.once.Do(func() {
			s.initErr = &e
			close(s.initCh)
		})
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "invocation/"):
		rest := strings.TrimPrefix(path, "invocation/")
		id, kind, ok := strings.Cut(rest, "/")
		if !ok || (kind != "response" && kind != "error") {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		inv := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if inv == nil {
			http.Error(w, `{"errorMessage":"unknown request id","errorType":"InvalidRequestID"}`, http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 6<<20))
		res := Result{RequestID: id, Duration: time.Since(inv.sent)}
		if kind == "error" {
			var e InvokeError
			if err := json.Unmarshal(body, &e); err != nil {
				e = InvokeError{Message: string(body), Type: "Unknown"}
			}
			res.Err = &e
		} else {
			res.Payload = body
		}
		inv.done <- res
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) next(w http.ResponseWriter, r *http.Request) {
	select {
	case inv := <-s.queue:
		inv.sent = time.Now()
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", s.FunctionARN)
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0")
		h.Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(inv.payload)
	case <-r.Context().Done():
	}
}
