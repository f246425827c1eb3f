package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// Small areas with a table each and no cross-table rules: settings,
// signing keys, directories and avatars.

// orNull stores the zero time as NULL.
func orNull(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNull reads a nullable timestamptz back: NULL is the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// deleted turns a DELETE that removed nothing into ErrNotFound.
func deleted(what, key string, tag interface{ RowsAffected() int64 }, err error) error {
	if err != nil {
		return dbErr(fmt.Sprintf("%s %q", what, key), err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(what, key)
	}
	return nil
}

func (d *DB) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	if err := d.pool.QueryRow(ctx, "SELECT value FROM settings WHERE name = $1", name).Scan(&v); err != nil {
		return nil, dbErr(fmt.Sprintf("get setting %q", name), err)
	}
	return v, nil
}

func (d *DB) PutSetting(ctx context.Context, name string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	_, err := d.execNotify(ctx, storage.ChangeSettings, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return dbErr(fmt.Sprintf("put setting %q", name), err)
}

// ListSigningKeys returns the keys oldest first.
func (d *DB) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, algorithm, sealed_key, public_jwk, created_at, retired_at, verify_till
		FROM signing_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, dbErr("list signing keys", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.SigningKey, error) {
		var k storage.SigningKey
		var retired, till *time.Time
		err := r.Scan(&k.ID, &k.Algorithm, &k.SealedKey, &k.PublicJWK, &k.CreatedAt, &retired, &till)
		k.CreatedAt, k.RetiredAt, k.VerifyTill = utc(k.CreatedAt), fromNull(retired), fromNull(till)
		return k, err
	})
	return keys, dbErr("list signing keys", err)
}

func (d *DB) PutSigningKey(ctx context.Context, k storage.SigningKey) error {
	if k.ID == "" {
		return fmt.Errorf("put signing key: empty ID: %w", storage.ErrInvalid)
	}
	_, err := d.execNotify(ctx, storage.ChangeSigningKeys, `INSERT INTO signing_keys (id, algorithm, sealed_key, public_jwk, created_at, retired_at, verify_till)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET algorithm = excluded.algorithm, sealed_key = excluded.sealed_key,
			public_jwk = excluded.public_jwk, created_at = excluded.created_at,
			retired_at = excluded.retired_at, verify_till = excluded.verify_till`,
		k.ID, k.Algorithm, k.SealedKey, k.PublicJWK, k.CreatedAt, orNull(k.RetiredAt), orNull(k.VerifyTill))
	return dbErr(fmt.Sprintf("put signing key %q", k.ID), err)
}

func (d *DB) DeleteSigningKey(ctx context.Context, id string) error {
	tag, err := d.execNotify(ctx, storage.ChangeSigningKeys, "DELETE FROM signing_keys WHERE id = $1", id)
	return deleted("delete signing key", id, tag, err)
}

func (d *DB) PutDirectory(ctx context.Context, dir storage.Directory) error {
	if dir.ID == "" || dir.Type == "" {
		return fmt.Errorf("put directory: empty ID or type: %w", storage.ErrInvalid)
	}
	_, err := d.execNotify(ctx, storage.ChangeDirectories, `INSERT INTO directories (id, type, settings, sealed_secret, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET type = excluded.type, settings = excluded.settings,
			sealed_secret = excluded.sealed_secret, created_at = excluded.created_at, updated_at = excluded.updated_at`,
		dir.ID, dir.Type, dir.Settings, dir.SealedSecret, dir.CreatedAt, dir.UpdatedAt)
	return dbErr(fmt.Sprintf("put directory %q", dir.ID), err)
}

const directoryColumns = "id, type, settings, sealed_secret, created_at, updated_at"

func scanDirectory(r pgx.Row) (storage.Directory, error) {
	var dir storage.Directory
	err := r.Scan(&dir.ID, &dir.Type, &dir.Settings, &dir.SealedSecret, &dir.CreatedAt, &dir.UpdatedAt)
	dir.CreatedAt, dir.UpdatedAt = utc(dir.CreatedAt), utc(dir.UpdatedAt)
	return dir, err
}

func (d *DB) GetDirectory(ctx context.Context, id string) (storage.Directory, error) {
	dir, err := scanDirectory(d.pool.QueryRow(ctx, "SELECT "+directoryColumns+" FROM directories WHERE id = $1", id))
	if err != nil {
		return storage.Directory{}, dbErr(fmt.Sprintf("get directory %q", id), err)
	}
	return dir, nil
}

// ListDirectories returns the directories oldest first.
func (d *DB) ListDirectories(ctx context.Context) ([]storage.Directory, error) {
	rows, err := d.pool.Query(ctx, "SELECT "+directoryColumns+" FROM directories ORDER BY created_at, id")
	if err != nil {
		return nil, dbErr("list directories", err)
	}
	dirs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Directory, error) { return scanDirectory(r) })
	return dirs, dbErr("list directories", err)
}

func (d *DB) DeleteDirectory(ctx context.Context, id string) error {
	tag, err := d.execNotify(ctx, storage.ChangeDirectories, "DELETE FROM directories WHERE id = $1", id)
	return deleted("delete directory", id, tag, err)
}

func (d *DB) PutAvatar(ctx context.Context, a storage.Avatar) error {
	if a.UserID == "" {
		return fmt.Errorf("put avatar: empty user ID: %w", storage.ErrInvalid)
	}
	data := a.Data
	if data == nil {
		data = []byte{}
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO avatars (user_id, content_type, data, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET content_type = excluded.content_type, data = excluded.data, updated_at = excluded.updated_at`,
		a.UserID, a.ContentType, data, a.UpdatedAt)
	return dbErr(fmt.Sprintf("put avatar of %q", a.UserID), err)
}

func (d *DB) GetAvatar(ctx context.Context, userID string) (storage.Avatar, error) {
	a := storage.Avatar{UserID: userID}
	err := d.pool.QueryRow(ctx, "SELECT content_type, data, updated_at FROM avatars WHERE user_id = $1", userID).Scan(&a.ContentType, &a.Data, &a.UpdatedAt)
	if err != nil {
		return storage.Avatar{}, dbErr(fmt.Sprintf("get avatar of %q", userID), err)
	}
	a.UpdatedAt = utc(a.UpdatedAt)
	return a, nil
}

func (d *DB) DeleteAvatar(ctx context.Context, userID string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM avatars WHERE user_id = $1", userID)
	return deleted("delete avatar of", userID, tag, err)
}
