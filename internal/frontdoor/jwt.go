package frontdoor

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// Authorizer emulates the HTTP API JWT authorizer of template.yaml locally:
// RS256 tokens from "Authorization: Bearer ...", issuer and audience checked,
// exp/nbf enforced, the route's scope required. Like API Gateway it answers
// 401 {"message":"Unauthorized"} for a missing or invalid token and 403
// {"message":"Forbidden"} for a valid token without the scope, and passes
// claims and scopes to the function in requestContext.authorizer.jwt.
type Authorizer struct {
	Key      *rsa.PrivateKey // the local dev issuer's key (TEST only)
	Issuer   string
	Audience string
	Now      func() time.Time
}

// Errors of token checks (the door maps them to 401/403).
var (
	ErrUnauthorized = errors.New("frontdoor: unauthorized")
	ErrForbidden    = errors.New("frontdoor: forbidden")
)

// NewDevAuthorizer generates a TEST issuer key.
func NewDevAuthorizer() (*Authorizer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("frontdoor: %w", err)
	}
	return &Authorizer{Key: key, Issuer: "https://wxpay-serverless.local/dev-issuer", Audience: "wxpay-serverless"}, nil
}

func (a *Authorizer) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Token issues a token with the given scopes, valid for ttl.
func (a *Authorizer) Token(subject string, ttl time.Duration, scopes ...apigw.Scope) (string, error) {
	now := a.now()
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return a.sign(map[string]any{"iss": a.Issuer, "aud": a.Audience, "sub": subject, "iat": now.Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(ttl).Unix(), "scope": strings.Join(names, " ")})
}

func (a *Authorizer) sign(claims map[string]any) (string, error) {
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("frontdoor: %w", err)
	}
	signing := b64(header) + "." + b64(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, a.Key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("frontdoor: %w", err)
	}
	return signing + "." + b64(sig), nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Check validates the Authorization header value for a route scope and
// returns the claims and scopes API Gateway would pass on.
func (a *Authorizer) Check(header string, scope apigw.Scope) (*events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return nil, fmt.Errorf("%w: no bearer token", ErrUnauthorized)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: malformed token", ErrUnauthorized)
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err != nil || json.Unmarshal(raw, &hdr) != nil || hdr.Alg != "RS256" {
		return nil, fmt.Errorf("%w: unsupported token header", ErrUnauthorized)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed signature", ErrUnauthorized)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&a.Key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("%w: bad signature", ErrUnauthorized)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: malformed claims", ErrUnauthorized)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: malformed claims", ErrUnauthorized)
	}
	now := a.now().Unix()
	num := func(k string) (int64, bool) {
		f, ok := claims[k].(float64)
		return int64(f), ok
	}
	if exp, ok := num("exp"); !ok || now >= exp {
		return nil, fmt.Errorf("%w: expired", ErrUnauthorized)
	}
	if nbf, ok := num("nbf"); ok && now < nbf {
		return nil, fmt.Errorf("%w: not yet valid", ErrUnauthorized)
	}
	if claims["iss"] != a.Issuer {
		return nil, fmt.Errorf("%w: wrong issuer", ErrUnauthorized)
	}
	if !audienceMatches(claims["aud"], a.Audience) {
		return nil, fmt.Errorf("%w: wrong audience", ErrUnauthorized)
	}
	scopeText, _ := claims["scope"].(string)
	scopes := strings.Fields(scopeText)
	granted := false
	for _, s := range scopes {
		if s == string(scope) {
			granted = true
		}
	}
	if !granted {
		return nil, fmt.Errorf("%w: scope %s required", ErrForbidden, scope)
	}
	out := &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{}, Scopes: scopes}
	for k, v := range claims {
		switch x := v.(type) {
		case string:
			out.Claims[k] = x
		default:
			b, _ := json.Marshal(x)
			out.Claims[k] = string(b)
		}
	}
	return out, nil
}

func audienceMatches(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, v := range a {
			if v == want {
				return true
			}
		}
	}
	return false
}
