// Package health answers the GET /<fn>/health route of every function: it
// proves the container's wiring is real (credentials loaded from Secrets
// Manager, the DynamoDB table reachable) without revealing any secret.
package health

import (
	"context"
	"net/http"
	"time"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// Check is one named dependency probe.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Report is the health route's JSON body.
type Report struct {
	Function string            `json:"function"`
	Status   string            `json:"status"` // "ok" or "degraded"
	Checks   map[string]string `json:"checks"` // check name -> "ok" or a short failure class
	Time     string            `json:"time"`
}

// Handler returns the route handler. Probe errors are reported by name only:
// their text may carry endpoints or identifiers and stays in the logs.
func Handler(function string, now func() time.Time, checks ...Check) apigw.HandlerFunc {
	if now == nil {
		now = time.Now
	}
	return func(ctx context.Context, _ *apigw.Request) (*apigw.Response, error) {
		rep := Report{Function: function, Status: "ok", Checks: map[string]string{}, Time: now().UTC().Format(time.RFC3339)}
		for _, c := range checks {
			if err := c.Probe(ctx); err != nil {
				rep.Status = "degraded"
				rep.Checks[c.Name] = "failed"
				continue
			}
			rep.Checks[c.Name] = "ok"
		}
		status := http.StatusOK
		if rep.Status != "ok" {
			status = http.StatusServiceUnavailable
		}
		return apigw.JSON(status, rep), nil
	}
}
