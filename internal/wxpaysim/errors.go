package wxpaysim

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinels returned (wrapped) by the Go API; test them with errors.Is.
var (
	// ErrInvalid: an argument (config, merchant, notification, payment) is invalid.
	ErrInvalid = errors.New("wxpaysim: invalid argument")
	// ErrUnknownMerchant: no merchant with that mchid was added.
	ErrUnknownMerchant = errors.New("wxpaysim: unknown merchant")
	// ErrMerchantExists: AddMerchant with an mchid already registered with a different config.
	ErrMerchantExists = errors.New("wxpaysim: merchant already exists with a different config")
	// ErrOrderNotFound: no order with that out_trade_no.
	ErrOrderNotFound = errors.New("wxpaysim: order does not exist")
	// ErrOrderState: the order is not in a state that allows the action.
	ErrOrderState = errors.New("wxpaysim: order state does not allow this")
	// ErrClosed: the simulator was closed.
	ErrClosed = errors.New("wxpaysim: simulator closed")
	// ErrUnknownNotification: WaitDelivered was given an id Notify never returned (or Reset forgot).
	ErrUnknownNotification = errors.New("wxpaysim: unknown notification id")
	// ErrGaveUp: every delivery attempt of a notification failed.
	ErrGaveUp = errors.New("wxpaysim: notification not acknowledged after all retries")
	// ErrCanceled: delivery was stopped by Close or Reset before an acknowledgement.
	ErrCanceled = errors.New("wxpaysim: notification delivery canceled")
)

// apiError is a WeChat Pay error answer: HTTP status and {"code","message"}.
// Route handlers return it; anything else becomes 500 SYSTEM_ERROR.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("wxpaysim: %d %s: %s", e.Status, e.Code, e.Message)
}

// errorBody is the wire form of an error answer.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiErr builds an *apiError.
func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// paramError is the common 400 PARAM_ERROR.
func paramError(format string, args ...any) *apiError {
	return apiErr(http.StatusBadRequest, "PARAM_ERROR", format, args...)
}

// signError is the common 401 SIGN_ERROR.
func signError(format string, args ...any) *apiError {
	return apiErr(http.StatusUnauthorized, "SIGN_ERROR", format, args...)
}

// errorsAsAPI reports err as an *apiError, turning anything else into a
// 500 SYSTEM_ERROR.
func errorsAsAPI(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "SYSTEM_ERROR", Message: "系统错误 (simulator internal error)"}
}
