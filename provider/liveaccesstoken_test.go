package provider

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// failingTokenReads fails the read of a presented access token, as a
// database that is briefly unreachable does.
type failingTokenReads struct{ *bolt.DB }

func (failingTokenReads) GetAccessTokenAndUser(context.Context, string) (storage.AccessToken, storage.User, storage.Credential, error) {
	return storage.AccessToken{}, storage.User{}, storage.Credential{}, errors.New("connection refused")
}

// A stored access token is dead once the provider's clock says it has
// expired, at userinfo and introspection as at the management API and
// token exchange, even while the store, whose clock runs behind, still
// hands it out. A store that cannot be read is not a dead token: the
// readers answer the same (invalid_token, active=false), as a server
// error that is logged, not as an unknown token.
func TestLiveAccessTokenByTheProvidersClock(t *testing.T) {
	db := openTestDB(t) // the wall clock
	ctx := context.Background()
	now := time.Now()
	seedAliceAndApp(t, db, now)
	tok := storage.AccessToken{ID: "a1", ClientID: "app", UserID: "u1", Subject: "u1", Audience: []string{"app"}, Scopes: []string{"openid"},
		CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateTokens(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	var ahead time.Duration // the provider's clock runs ahead of the store's by this much
	s := &opStorage{store: db, issuer: "https://id.example.com", now: func() time.Time { return time.Now().Add(ahead) }, log: slog.New(slog.DiscardHandler)}
	introspection := func() error {
		return s.SetIntrospectionFromToken(withReadMemo(ctx), &oidc.IntrospectionResponse{}, "a1", "u1", "")
	}
	userinfo := func() error {
		return s.SetUserinfoFromToken(withReadMemo(ctx), &oidc.UserInfo{}, "a1", "u1", "")
	}
	if err := introspection(); err != nil {
		t.Fatalf("introspection of a live token: %v", err)
	}
	if err := userinfo(); err != nil {
		t.Fatalf("userinfo with a live token: %v", err)
	}

	ahead = 2 * time.Hour
	if _, _, _, err := db.GetAccessTokenAndUser(ctx, "a1"); err != nil {
		t.Fatalf("the store no longer hands out the token, so this tests nothing: %v", err)
	}
	if err := introspection(); !errors.Is(err, errInvalidToken) {
		t.Errorf("introspection of a token expired by the provider's clock: %v, want inactive", err)
	}
	if err := userinfo(); !errors.Is(err, errInvalidToken) {
		t.Errorf("userinfo with a token expired by the provider's clock: %v, want invalid_token", err)
	}

	ahead = 0
	s.store = failingTokenReads{db}
	var oe *oidc.Error
	if err := introspection(); !errors.As(err, &oe) || oe.ErrorType != oidc.ServerError {
		t.Errorf("introspection while the store fails: %v, want a server error (answered as inactive)", err)
	}
	if err := userinfo(); !errors.As(err, &oe) || oe.ErrorType != oidc.ServerError {
		t.Errorf("userinfo while the store fails: %v, want a server error (answered as invalid_token)", err)
	}
}
