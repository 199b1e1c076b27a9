// Package notfound caches not-found results that are not a sentinel of
// the interface's file: an error type, a predicate, a predicate with the
// type it keeps, and a sentinel — of packages this file does not import
// (db.go does).
package notfound

import "context"

type User struct {
	ID   int64
	Name string
}

// Status is a kratos-style error.
type Status struct {
	Code   int32
	Reason string
}

func (s *Status) Error() string { return s.Reason }

func IsUserNotFound(err error) bool {
	var s *Status
	for err != nil {
		if e, ok := err.(*Status); ok {
			s = e
			break
		}
		u, ok := err.(interface{ Unwrap() []error })
		if !ok {
			break
		}
		for _, x := range u.Unwrap() {
			if IsUserNotFound(x) {
				return true
			}
		}
		return false
	}
	return s != nil && s.Code == 404 && s.Reason == "USER_NOT_FOUND"
}

//cache:repo prefix=nf ttl=1m negative=30s
type Users interface {
	//cache:get key="ent:{id}" notfound=*ent.NotFoundError
	ByType(ctx context.Context, id int64) (*User, error)
	//cache:get key="pred:{id}" notfound=ent.IsNotFound
	ByPredicate(ctx context.Context, id int64) (*User, error)
	//cache:get key="status:{id}" notfound="IsUserNotFound,*Status"
	ByStatus(ctx context.Context, id int64) (User, error)
	// database/sql is imported by db.go only.
	//cache:get key="row:{id}" notfound=sql.ErrNoRows
	ByRow(ctx context.Context, id int64) (User, error)
}
