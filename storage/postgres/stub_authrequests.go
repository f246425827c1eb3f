package postgres

// SCAFFOLDING, NOT DONE: the storage.AuthRequests methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"
	"time"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateAuthRequest(ctx context.Context, a storage.AuthRequest, limits storage.PendingLimits) (evicted int, err error) {
	err = unsupported("CreateAuthRequest")
	return
}

func (d *DB) GetAuthRequest(ctx context.Context, id string) (_ storage.AuthRequest, err error) {
	err = unsupported("GetAuthRequest")
	return
}

func (d *DB) UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (_ storage.AuthRequest, err error) {
	err = unsupported("UpdateAuthRequest")
	return
}

func (d *DB) DeleteAuthRequest(ctx context.Context, id string) (err error) {
	err = unsupported("DeleteAuthRequest")
	return
}

func (d *DB) IssueCode(ctx context.Context, authRequestID, codeHash string, expires time.Time) (err error) {
	err = unsupported("IssueCode")
	return
}

func (d *DB) RedeemCode(ctx context.Context, codeHash, clientID string, issue storage.IssuedTokens) (_ storage.AuthRequest, err error) {
	err = unsupported("RedeemCode")
	return
}

func (d *DB) MarkCodeReplayed(ctx context.Context, codeHash, clientID string) (_ storage.IssuedTokens, err error) {
	err = unsupported("MarkCodeReplayed")
	return
}

func (d *DB) CreateCodeTokens(ctx context.Context, codeHash string, access storage.AccessToken, refresh *storage.RefreshToken, sessionID string) (err error) {
	err = unsupported("CreateCodeTokens")
	return
}
