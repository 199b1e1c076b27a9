// Package model is one of two packages named model.
package model

type User struct {
	ID   int64
	Name string
}
