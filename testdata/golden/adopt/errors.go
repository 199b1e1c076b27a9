package adopt

import "errors"

var ErrNotFound = errors.New("your requested item is not found")

// StatusError is a kratos-style error: code, reason, message, metadata,
// and a cause that is not stored.
type StatusError struct {
	Code     int32
	Reason   string
	Message  string
	Metadata map[string]string
	cause    error
}

func (e *StatusError) Error() string { return e.Reason + ": " + e.Message }

// Is matches by code and reason, as kratos' errors do.
func (e *StatusError) Is(target error) bool {
	t, ok := target.(*StatusError)
	return ok && t.Code == e.Code && t.Reason == e.Reason
}

func (e *StatusError) Unwrap() error { return e.cause }

// WithCause returns a copy of e with its cause and metadata set.
func (e *StatusError) WithCause(cause error, md map[string]string) *StatusError {
	c := *e
	c.cause, c.Metadata = cause, md
	return &c
}

var ErrUserNotFound = &StatusError{Code: 404, Reason: "USER_NOT_FOUND", Message: "user not found"}
