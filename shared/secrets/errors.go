package secrets

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid matches (errors.Is) every error reporting that a secret
	// document is not valid; such errors are [*FieldError] values.
	ErrInvalid = errors.New("secrets: invalid credentials document")

	// ErrNotFound matches errors reporting that the secret (or file) does
	// not exist.
	ErrNotFound = errors.New("secrets: secret not found")

	// ErrUnknownSerial matches errors reporting that no configured public
	// key or platform certificate has the requested serial, even after a
	// refresh.
	ErrUnknownSerial = errors.New("secrets: unknown WeChat Pay serial")
)

// documentField is the FieldError.Field used for problems with the document
// as a whole.
const documentField = "(document)"

// FieldError reports an invalid field of the secret document. Reason never
// contains the field's value. It matches errors.Is(err, ErrInvalid).
type FieldError struct {
	// Field is the JSON field name, with an index for list elements (for
	// example "platform_certificates[1]"), or "(document)".
	Field string
	// Reason says what is wrong, without quoting the value.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("secrets: field %q: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid
}

// fieldErr is a shorthand constructor for *FieldError.
func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
