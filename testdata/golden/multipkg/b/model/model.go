// Package model is the other package named model.
package model

import "errors"

var ErrMissing = errors.New("missing")

type Order struct {
	ID    int64
	Total int64
}
