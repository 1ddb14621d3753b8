// Package smfake is an in-memory stand-in for the AWS Secrets Manager
// endpoint, for tests and local development only.
//
// A [Server] implements just enough of the AWS JSON 1.1 protocol for the
// GetSecretValue operation that the real aws-sdk-go-v2 secretsmanager client
// can talk to it:
//
//	srv := httptest.NewServer(smfake.New())
//	client := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
//		o.BaseEndpoint = aws.String(srv.URL)
//	})
//
// Requests must be POSTs carrying X-Amz-Target
// "secretsmanager.GetSecretValue", Content-Type
// "application/x-amz-json-1.1" and an AWS4-HMAC-SHA256 Authorization header.
// The signature itself is not verified. Only the SecretId request member is
// honoured; VersionId and VersionStage are ignored and the current version is
// always returned.
package smfake

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// targetGetSecretValue is the X-Amz-Target value of the one supported
	// operation.
	targetGetSecretValue = "secretsmanager.GetSecretValue"
	// contentType is the AWS JSON 1.1 media type used by requests and
	// responses.
	contentType = "application/x-amz-json-1.1"
	// arnPrefix is prepended to a secret's name to build its ARN.
	arnPrefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	// maxBodyBytes bounds the request body the fake is willing to read.
	maxBodyBytes = 1 << 20
)

// Server is a fake Secrets Manager endpoint serving GetSecretValue. Create it
// with [New]; all methods are safe for concurrent use.
type Server struct {
	// Now supplies CreatedDate values; nil means time.Now. Set it before the
	// server handles its first request.
	Now func() time.Time

	mu       sync.Mutex
	byName   map[string]*secret
	byARN    map[string]*secret
	versions int
	calls    int
	failNext int
}

// secret is one stored secret with its current version.
type secret struct {
	name      string
	arn       string
	value     string
	versionID string
	created   time.Time // creation time of the current version
}

// New returns an empty Server.
func New() *Server {
	return &Server{
		byName: make(map[string]*secret),
		byARN:  make(map[string]*secret),
	}
}

// Put stores secretString as the current (AWSCURRENT) value of the secret
// called name, creating the secret if needed. Every Put assigns a new
// VersionId.
func (s *Server) Put(name, secretString string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions++
	now := s.now()
	sec, ok := s.byName[name]
	if !ok {
		sec = &secret{name: name, arn: arnFor(name)}
		s.byName[name] = sec
		s.byARN[sec.arn] = sec
	}
	sec.value = secretString
	sec.created = now
	sec.versionID = fmt.Sprintf("00000000-0000-4000-8000-%012d", s.versions)
}

// ARN returns the ARN under which the secret called name is reachable, and
// whether such a secret exists.
func (s *Server) ARN(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.byName[name]
	if !ok {
		return "", false
	}
	return sec.arn, true
}

// Calls reports how many well-formed GetSecretValue requests the server has
// answered, whatever the outcome (value, not found or injected fault).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// FailNext makes the next n GetSecretValue requests answer HTTP 500 with an
// InternalServiceError. Note that the SDK retries such errors by default.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = max(n, 0)
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "InvalidRequestException", "only POST is supported")
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != targetGetSecretValue {
		writeError(w, http.StatusBadRequest, "InvalidRequestException",
			fmt.Sprintf("unsupported X-Amz-Target %q; only %s is implemented", target, targetGetSecretValue))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		writeError(w, http.StatusBadRequest, "InvalidRequestException",
			fmt.Sprintf("unsupported Content-Type %q, want %s", ct, contentType))
		return
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		writeError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "request is missing an Authorization header")
		return
	}
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		writeError(w, http.StatusForbidden, "IncompleteSignatureException", "Authorization header is not AWS4-HMAC-SHA256")
		return
	}

	var in struct {
		SecretID *string `json:"SecretId"`
	}
	var body []byte
	var err error
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestException", "cannot read request body")
		return
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", "request body is not a JSON object")
		return
	}
	if in.SecretID == nil || *in.SecretID == "" {
		writeError(w, http.StatusBadRequest, "ValidationException", "SecretId is required")
		return
	}

	s.mu.Lock()
	s.calls++
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		writeError(w, http.StatusInternalServerError, "InternalServiceError", "injected fault")
		return
	}
	sec, ok := s.byName[*in.SecretID]
	if !ok {
		sec, ok = s.byARN[*in.SecretID]
	}
	var out getSecretValueOutput
	if ok {
		out = getSecretValueOutput{
			ARN:           sec.arn,
			Name:          sec.name,
			SecretString:  sec.value,
			VersionID:     sec.versionID,
			VersionStages: []string{"AWSCURRENT"},
			CreatedDate:   float64(sec.created.UnixMilli()) / 1000,
		}
	}
	s.mu.Unlock()

	if !ok {
		writeError(w, http.StatusBadRequest, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// now returns the server's current time.
func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// getSecretValueOutput is the wire form of a successful GetSecretValue
// response.
type getSecretValueOutput struct {
	ARN           string   `json:"ARN"`
	Name          string   `json:"Name"`
	SecretString  string   `json:"SecretString"`
	VersionID     string   `json:"VersionId"`
	VersionStages []string `json:"VersionStages"`
	CreatedDate   float64  `json:"CreatedDate"`
}

// arnFor builds a deterministic ARN, including the six-character suffix
// Secrets Manager appends to names.
func arnFor(name string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	sum := sha256.Sum256([]byte(name))
	suffix := make([]byte, 6)
	for i := range suffix {
		suffix[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return arnPrefix + name + "-" + string(suffix)
}

// writeError answers with an AWS JSON protocol error document.
func writeError(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("X-Amzn-ErrorType", errType)
	writeJSON(w, status, struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{Type: errType, Message: message})
}

// writeJSON answers with v encoded as an AWS JSON 1.1 document.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "smfake: encode response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", "00000000-0000-4000-8000-000000000000")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
