package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
	"github.com/wxpay-serverless/wxpay-serverless/shared/reconcile"
	"github.com/wxpay-serverless/wxpay-serverless/shared/wxpay"
)

// Error codes of the billing routes.
const (
	CodeRunInProgress = "RUN_IN_PROGRESS"
	CodeBillRejected  = "BILL_REJECTED"
	CodeNotConfigured = "NOT_CONFIGURED"
)

// RunView is the JSON answer of both routes: the record of the date with
// its summary and first differences decoded.
type RunView struct {
	Record
	Summary     *reconcile.Summary     `json:"summary,omitempty"`
	FirstDiffs  []reconcile.Difference `json:"first_differences,omitempty"`
	RetryAfterS int                    `json:"retry_after_seconds,omitempty"`
}

func view(rec *Record) (*RunView, error) {
	v := &RunView{Record: *rec}
	if rec.SummaryJSON != "" {
		v.Summary = &reconcile.Summary{}
		if err := json.Unmarshal([]byte(rec.SummaryJSON), v.Summary); err != nil {
			return nil, fmt.Errorf("billing: stored summary: %w", err)
		}
	}
	if rec.FirstJSON != "" {
		if err := json.Unmarshal([]byte(rec.FirstJSON), &v.FirstDiffs); err != nil {
			return nil, fmt.Errorf("billing: stored differences: %w", err)
		}
	}
	return v, nil
}

// httpBackoff: an HTTP re-run does not wait for a bill being generated (API
// Gateway gives up after 30 s); it answers 202 with retry_after_seconds.
func httpBackoff() Backoff { return Backoff{Attempts: 1} }

// notReadyRetryAfter is the retry hint of a pending run (pitfalls.md P3:
// bills are generated from 09:00; retry about every 30 minutes).
const notReadyRetryAfter = 30 * 60

// postRun is POST /billing/reconciliations/{bill_date}: run the pipeline
// for one date now. The body is empty or {}.
func (h *Handler) postRun(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	date := req.PathParams["bill_date"]
	if err := CheckBillDate(date, h.now()); err != nil {
		return nil, apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, "bill_date: %s", trimPrefix(err))
	}
	if len(req.Body) > 0 {
		var none struct{}
		if err := apigw.DecodeJSON(req.Body, &none); err != nil {
			return nil, err
		}
	}
	if missing := h.configured(); missing != "" {
		return nil, apigw.Errorf(http.StatusServiceUnavailable, CodeNotConfigured, "no %s configured", missing)
	}
	rec, err := h.Pipeline(httpBackoff()).Run(ctx, date, "api")
	var nr *NotReadyError
	var rj *RejectedError
	var ae *wxpay.APIError
	switch {
	case err == nil:
		v, verr := view(rec)
		if verr != nil {
			return nil, verr
		}
		return apigw.JSON(http.StatusOK, v), nil
	case errors.Is(err, ErrRunning):
		return nil, apigw.Errorf(http.StatusConflict, CodeRunInProgress, "a reconciliation of %s is already running; GET it for its progress", date)
	case errors.As(err, &nr):
		v, verr := view(rec)
		if verr != nil {
			return nil, verr
		}
		v.RetryAfterS = notReadyRetryAfter
		resp := apigw.JSON(http.StatusAccepted, v)
		resp.Headers = map[string]string{"retry-after": strconv.Itoa(notReadyRetryAfter)}
		return resp, nil
	case errors.As(err, &rj):
		return nil, &apigw.Error{Status: http.StatusBadGateway, Code: CodeBillRejected, Err: err,
			Message: fmt.Sprintf("the %s WeChat Pay served for %s was rejected (%s) and not reconciled; its raw file is kept at %s", rj.Bill, date, rj.Code, rj.RawKey)}
	case errors.As(err, &ae):
		return nil, &apigw.Error{Status: http.StatusBadGateway, Code: apigw.CodeUpstream, Err: err,
			Message: fmt.Sprintf("WeChat Pay answered %d %s", ae.StatusCode, ae.Code)}
	}
	return nil, err
}

// trimPrefix is the message of a wrapped ErrBillDate without its prefix.
func trimPrefix(err error) string {
	msg := err.Error()
	if p := ErrBillDate.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}

// getRun is GET /billing/reconciliations/{bill_date}.
func (h *Handler) getRun(ctx context.Context, req *apigw.Request) (*apigw.Response, error) {
	date := req.PathParams["bill_date"]
	if _, err := parseDate(date); err != nil {
		return nil, apigw.Errorf(http.StatusBadRequest, apigw.CodeParamError, "%q is not a date yyyy-MM-dd", date)
	}
	var rec Record
	if err := h.deps.Store.Get(ctx, RunKey(date), &rec); err != nil {
		return nil, err
	}
	v, err := view(&rec)
	if err != nil {
		return nil, err
	}
	return apigw.JSON(http.StatusOK, v), nil
}
