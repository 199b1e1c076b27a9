package notfound

import (
	"database/sql"

	"github.com/cachegen/cachegen/testdata/golden/notfound/ent"
)

// DB is the implementation's side of the package.
type DB struct{ *sql.DB }

func (db *DB) missing() error { return ent.NewNotFound("user") }
