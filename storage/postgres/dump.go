package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

var _ storage.Dumper = (*DB)(nil)

// recordTables are the tables whose record column is a kind's record as
// it is; the other kinds are built from their columns in Dump.
var recordTables = []struct{ kind, sql string }{
	{storage.DumpGroup, "SELECT record FROM groups ORDER BY id"},
	{storage.DumpUser, "SELECT record FROM users ORDER BY id"},
	{storage.DumpClient, "SELECT record FROM clients ORDER BY id"},
	{storage.DumpCredential, "SELECT record FROM credentials ORDER BY user_id, id"},
	{storage.DumpSession, "SELECT record FROM sessions ORDER BY id"},
	{storage.DumpRefreshToken, "SELECT record FROM refresh_tokens ORDER BY hash"},
	{storage.DumpAccessToken, "SELECT record FROM access_tokens ORDER BY id"},
	{storage.DumpOneTimeToken, "SELECT record FROM one_time_tokens ORDER BY hash"},
	{storage.DumpLoginAttempt, "SELECT record FROM login_attempts ORDER BY user_id, at, id"},
	{storage.DumpThrottle, "SELECT record FROM throttles ORDER BY key"},
	{storage.DumpAuditEvent, "SELECT record FROM audit_events ORDER BY at_ns, id"},
	{storage.DumpOutboxMessage, "SELECT record FROM outbox ORDER BY id"},
	{storage.DumpWebhook, "SELECT record FROM webhooks ORDER BY id"},
}

// Dump lists every record from one REPEATABLE READ, read-only
// transaction: one snapshot, while other processes go on writing. Sign-ins
// in progress are left out. See storage.Dumper.
func (d *DB) Dump(ctx context.Context, fn func(storage.Record) error) error {
	err := pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		emit := func(kind string, v any) error {
			r, err := storage.NewRecord(kind, v)
			if err != nil {
				return err
			}
			return fn(r)
		}
		err := dumpRows(ctx, tx, "SELECT name, value FROM settings ORDER BY name", func(r pgx.Rows) error {
			var s storage.DumpedSetting
			if err := r.Scan(&s.Name, &s.Value); err != nil {
				return err
			}
			return emit(storage.DumpSetting, s)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, `SELECT id, algorithm, sealed_key, public_jwk, created_at, retired_at, verify_till
			FROM signing_keys ORDER BY created_at, id`, func(r pgx.Rows) error {
			var k storage.SigningKey
			var retired, till *time.Time
			if err := r.Scan(&k.ID, &k.Algorithm, &k.SealedKey, &k.PublicJWK, &k.CreatedAt, &retired, &till); err != nil {
				return err
			}
			k.CreatedAt, k.RetiredAt, k.VerifyTill = utc(k.CreatedAt), fromNull(retired), fromNull(till)
			return emit(storage.DumpSigningKey, k)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, "SELECT "+directoryColumns+" FROM directories ORDER BY id", func(r pgx.Rows) error {
			dir, err := scanDirectory(r)
			if err != nil {
				return err
			}
			return emit(storage.DumpDirectory, dir)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, "SELECT name, user_id, until FROM reserved_names ORDER BY name", func(r pgx.Rows) error {
			var n storage.ReservedName
			if err := r.Scan(&n.Name, &n.UserID, &n.Until); err != nil {
				return err
			}
			n.Until = utc(n.Until)
			return emit(storage.DumpReservedName, n)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, "SELECT user_id, content_type, data, updated_at FROM avatars ORDER BY user_id", func(r pgx.Rows) error {
			var a storage.Avatar
			if err := r.Scan(&a.UserID, &a.ContentType, &a.Data, &a.UpdatedAt); err != nil {
				return err
			}
			a.UpdatedAt = utc(a.UpdatedAt)
			return emit(storage.DumpAvatar, a)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, "SELECT id, user_id, client_id, live_hash, coalesce(prev_hash, '') FROM refresh_families ORDER BY id", func(r pgx.Rows) error {
			var f storage.RefreshFamily
			if err := r.Scan(&f.ID, &f.UserID, &f.ClientID, &f.Live, &f.Prev); err != nil {
				return err
			}
			return emit(storage.DumpRefreshFamily, f)
		})
		if err != nil {
			return err
		}
		err = dumpRows(ctx, tx, "SELECT "+grantColumns+" FROM grants ORDER BY user_id, client_id", func(r pgx.Rows) error {
			g, err := scanGrant(r)
			if err != nil {
				return err
			}
			return emit(storage.DumpGrant, g)
		})
		if err != nil {
			return err
		}
		for _, t := range recordTables {
			err := dumpRows(ctx, tx, t.sql, func(r pgx.Rows) error {
				var raw []byte
				if err := r.Scan(&raw); err != nil {
					return err
				}
				return fn(storage.Record{Kind: t.kind, Value: raw})
			})
			if err != nil {
				return err
			}
		}
		var hook string
		n := 0
		return dumpRows(ctx, tx, "SELECT webhook_id, record FROM webhook_deliveries ORDER BY webhook_id, seq", func(r pgx.Rows) error {
			var id string
			var raw []byte
			if err := r.Scan(&id, &raw); err != nil {
				return err
			}
			if id != hook {
				hook, n = id, 0
			}
			n++
			del, err := unmarshal[storage.WebhookDelivery](raw)
			if err != nil {
				return fmt.Errorf("decode delivery %d of webhook %q: %w", n, id, err)
			}
			return emit(storage.DumpWebhookDelivery, storage.DumpedDelivery{WebhookID: id, N: n, Delivery: del})
		})
	})
	return dbErr("dump", err)
}

// dumpRows runs sql and calls each for every row.
func dumpRows(ctx context.Context, tx pgx.Tx, sql string, each func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
