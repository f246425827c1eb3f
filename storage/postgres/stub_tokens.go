package postgres

// SCAFFOLDING, NOT DONE: the storage.Tokens methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken) (err error) {
	err = unsupported("CreateTokens")
	return
}

func (d *DB) GetAccessToken(ctx context.Context, id string) (_ storage.AccessToken, err error) {
	err = unsupported("GetAccessToken")
	return
}

func (d *DB) GetRefreshToken(ctx context.Context, hash string) (_ storage.RefreshToken, err error) {
	err = unsupported("GetRefreshToken")
	return
}

func (d *DB) RetryRefreshToken(ctx context.Context, hash string, access storage.AccessToken) (_ storage.RefreshToken, err error) {
	err = unsupported("RetryRefreshToken")
	return
}

func (d *DB) PeekRefreshToken(ctx context.Context, hash string) (_ storage.RefreshToken, err error) {
	err = unsupported("PeekRefreshToken")
	return
}

func (d *DB) GetRefreshTokenByID(ctx context.Context, id string) (_ storage.RefreshToken, err error) {
	err = unsupported("GetRefreshTokenByID")
	return
}

func (d *DB) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, access storage.AccessToken) (err error) {
	err = unsupported("RotateRefreshToken")
	return
}

func (d *DB) DeleteAccessToken(ctx context.Context, id string) (err error) {
	err = unsupported("DeleteAccessToken")
	return
}

func (d *DB) RevokeFamily(ctx context.Context, familyID string) (err error) {
	err = unsupported("RevokeFamily")
	return
}

func (d *DB) RevokeUserClient(ctx context.Context, userID, clientID string) (_ int, err error) {
	err = unsupported("RevokeUserClient")
	return
}

// revokeClientTokensTx deletes, in tx, every access token and
// refresh-token family issued to client id and returns how many live
// tokens went (for UpdateClientRevokingTokens). Until the tokens area is
// written it refuses, so such an update is refused whole rather than
// leaving tokens the caller believes revoked.
func revokeClientTokensTx(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	return 0, unsupported("revoking a client's tokens")
}
