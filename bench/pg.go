package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Rows is how many users the benchmark table holds.
const Rows = 100_000

// Table is the benchmark's own table, created idempotently.
const Table = "bench_users"

// Setup creates and seeds bench_users if it is missing or short of rows.
func Setup(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
		id         bigint PRIMARY KEY,
		name       text NOT NULL,
		email      text NOT NULL,
		team       text NOT NULL,
		bio        text NOT NULL,
		score      bigint NOT NULL DEFAULT 0,
		updated_at timestamptz NOT NULL DEFAULT now())`)
	if err != nil {
		return fmt.Errorf("create %s: %w", Table, err)
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+Table).Scan(&n); err != nil {
		return err
	}
	if n >= Rows {
		return nil
	}
	_, err = pool.Exec(ctx, `INSERT INTO `+Table+` (id, name, email, team, bio)
		SELECT g, 'user ' || g, 'user' || g || '@example.com', 'team' || (g % 100),
		       'Writes about caching, databases and the occasional benchmark. Id ' || g
		FROM generate_series(1, $1::bigint) g
		ON CONFLICT (id) DO NOTHING`, Rows)
	if err != nil {
		return fmt.Errorf("seed %s: %w", Table, err)
	}
	return nil
}

// PGUsers is the no-cache baseline and the source every cache wraps: a pgx
// primary-key lookup. It counts the queries it runs.
type PGUsers struct {
	Pool *pgxpool.Pool
	// Delay, when set, makes every Get sleep that long inside PostgreSQL
	// (pg_sleep), holding a connection like a slow query does.
	Delay time.Duration

	Reads, Writes atomic.Int64
}

var _ Users = (*PGUsers)(nil)

const selectUser = `SELECT id, name, email, team, bio, score, updated_at FROM ` + Table + ` WHERE id = $1`

// Get reads one user by primary key.
func (p *PGUsers) Get(ctx context.Context, id int64) (*User, error) {
	p.Reads.Add(1)
	var row pgx.Row
	if p.Delay > 0 {
		row = p.Pool.QueryRow(ctx, `SELECT u.id, u.name, u.email, u.team, u.bio, u.score, u.updated_at
			FROM `+Table+` u, pg_sleep($2::float8) WHERE u.id = $1`, id, p.Delay.Seconds())
	} else {
		row = p.Pool.QueryRow(ctx, selectUser, id)
	}
	u := new(User)
	err := row.Scan(&u.ID, &u.Name, &u.Email, &u.Team, &u.Bio, &u.Score, &u.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// GetMany reads users by primary key in one statement.
func (p *PGUsers) GetMany(ctx context.Context, ids []int64) (map[int64]*User, error) {
	p.Reads.Add(1)
	rows, err := p.Pool.Query(ctx, `SELECT id, name, email, team, bio, score, updated_at FROM `+Table+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*User, len(ids))
	var u User
	_, err = pgx.ForEachRow(rows, []any{&u.ID, &u.Name, &u.Email, &u.Team, &u.Bio, &u.Score, &u.UpdatedAt}, func() error {
		cp := u
		out[u.ID] = &cp
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Member reads a user as a member of team (the team is only part of the key).
func (p *PGUsers) Member(ctx context.Context, team string, id int64) (*User, error) {
	return p.Get(ctx, id)
}

// Touch is the workload's write: bump the user's score.
func (p *PGUsers) Touch(ctx context.Context, id int64) error {
	p.Writes.Add(1)
	_, err := p.Pool.Exec(ctx, `UPDATE `+Table+` SET score = score + 1, updated_at = now() WHERE id = $1`, id)
	return err
}

// TeamChanged writes nothing; it exists to invalidate a team's tag.
func (p *PGUsers) TeamChanged(ctx context.Context, team string) error { return nil }

// MemUsers is an in-memory source, for filling many entries quickly.
type MemUsers struct{}

var _ Users = MemUsers{}

// Get returns a synthetic user.
func (MemUsers) Get(ctx context.Context, id int64) (*User, error) {
	s := strconv.FormatInt(id, 10)
	return &User{ID: id, Name: "user " + s, Email: "user" + s + "@example.com", Team: "team" + strconv.FormatInt(id%100, 10),
		Bio: "Writes about caching, databases and the occasional benchmark. Id " + s, UpdatedAt: time.Unix(1700000000, 0).UTC()}, nil
}

// Member is Get.
func (m MemUsers) Member(ctx context.Context, team string, id int64) (*User, error) {
	return m.Get(ctx, id)
}

// GetMany is Get for each id.
func (m MemUsers) GetMany(ctx context.Context, ids []int64) (map[int64]*User, error) {
	out := make(map[int64]*User, len(ids))
	for _, id := range ids {
		out[id], _ = m.Get(ctx, id)
	}
	return out, nil
}

// Touch does nothing.
func (MemUsers) Touch(ctx context.Context, id int64) error { return nil }

// TeamChanged does nothing.
func (MemUsers) TeamChanged(ctx context.Context, team string) error { return nil }
