package wxpay

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// APIError is a non-2xx answer from WeChat Pay: the HTTP status, the WeChat
// code and message from the JSON body, and the Request-ID to quote to WeChat
// Pay support. Match it with errors.As, or a code with IsCode.
type APIError struct {
	StatusCode int
	Code       string
	Message    string
	Detail     json.RawMessage
	RequestID  string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wxpay: %d %s: %s (request id %s)", e.StatusCode, e.Code, e.Message, e.RequestID)
}

// Retryable reports whether the same request may be sent again: server
// errors, SYSTEM_ERROR and rate limiting. Business errors (4xx) never are.
func (e *APIError) Retryable() bool {
	switch {
	case e.StatusCode >= 500, e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.Code == CodeSystemError, e.Code == CodeFrequencyLimited, e.Code == CodeRateLimited:
		return true
	}
	return false
}

// WeChat Pay error codes the bundle handles explicitly.
const (
	CodeParamError        = "PARAM_ERROR"
	CodeInvalidRequest    = "INVALID_REQUEST"
	CodeSignError         = "SIGN_ERROR"
	CodeNoAuth            = "NO_AUTH"
	CodeOrderNotExist     = "ORDER_NOT_EXIST"
	CodeResourceNotExists = "RESOURCE_NOT_EXISTS"
	CodeNotFound          = "NOT_FOUND"
	CodeSystemError       = "SYSTEM_ERROR"
	CodeFrequencyLimited  = "FREQUENCY_LIMITED"
	CodeRateLimited       = "RATE_LIMITED"
	CodeOrderPaid         = "ORDERPAID"
	CodeOrderClosed       = "ORDER_CLOSED"
)

// IsCode reports whether err is (or wraps) an APIError with one of codes.
func IsCode(err error, codes ...string) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.Code == c {
			return true
		}
	}
	return false
}

// IsNotFound reports a 404 or a not-found code.
func IsNotFound(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.StatusCode == http.StatusNotFound || ae.Code == CodeOrderNotExist || ae.Code == CodeResourceNotExists || ae.Code == CodeNotFound
}

// ErrResponseSignature is returned when a 2xx response fails verification:
// its body is not trusted and the call is not retried.
var ErrResponseSignature = errors.New("wxpay: response signature verification failed")

// ErrTransport classifies network failures and timeouts (retryable).
var ErrTransport = errors.New("wxpay: transport failure")
