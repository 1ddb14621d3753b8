package apigw

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
)

// ErrUnknownEvent is returned for a payload that is neither an HTTP API
// request nor a schedule input.
var ErrUnknownEvent = errors.New("apigw: event is neither an HTTP API request nor a schedule input")

// Triggered is the event of a function with two triggers: an HTTP API
// request, or the input S an EventBridge Scheduler target sends verbatim
// (Lambda gets no envelope for a scheduler target). Exactly one field is set.
// Schedule inputs are recognised by their "job" field.
type Triggered[S any] struct {
	HTTP     *events.APIGatewayV2HTTPRequest
	Schedule *S
}

// UnmarshalJSON decodes strictly: the payload must match one shape exactly.
func (e *Triggered[S]) UnmarshalJSON(b []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("apigw: decode event: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch {
	case probe["routeKey"] != nil || probe["requestContext"] != nil:
		var req events.APIGatewayV2HTTPRequest
		if err := dec.Decode(&req); err != nil {
			return fmt.Errorf("apigw: decode HTTP API event: %w", err)
		}
		*e = Triggered[S]{HTTP: &req}
	case probe["job"] != nil:
		in := new(S)
		if err := dec.Decode(in); err != nil {
			return fmt.Errorf("apigw: decode schedule input: %w", err)
		}
		*e = Triggered[S]{Schedule: in}
	default:
		return ErrUnknownEvent
	}
	return nil
}

// MarshalJSON encodes whichever shape is set.
func (e Triggered[S]) MarshalJSON() ([]byte, error) {
	switch {
	case e.HTTP != nil:
		return json.Marshal(e.HTTP)
	case e.Schedule != nil:
		return json.Marshal(e.Schedule)
	}
	return nil, ErrUnknownEvent
}
