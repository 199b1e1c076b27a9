// Package ent mimics an ORM's not-found error: an unexported field, and a
// predicate that checks the type.
package ent

import "errors"

type NotFoundError struct{ label string }

func (e *NotFoundError) Error() string { return "ent: " + e.label + " not found" }

func NewNotFound(label string) error { return &NotFoundError{label} }

func IsNotFound(err error) bool {
	var e *NotFoundError
	return errors.As(err, &e)
}
