package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// Dynamic client registration keeps its initial access tokens as
// credentials of storage.InitialAccessTokenOwner, a user that does not
// exist, and a registered app's token hash and approval hold on the
// client record.
var registrationTests = []test{
	{"InitialAccessTokens", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		owner := storage.InitialAccessTokenOwner
		iat := newCredential("i1", owner, storage.KindInitialAccessToken, "hash-i1", nil, clock.Now())
		iat.AllowedNetworks = nil
		iat.ValidUntil, iat.ExpiresAt = clock.Now().Add(time.Hour), clock.Now().Add(time.Hour)
		iat.MaxUses, iat.HoldForApproval = 2, true
		ok(t, s.CreateCredential(ctx, iat), "create an initial access token")
		other := newCredential("i2", owner, storage.KindInitialAccessToken, "hash-i2", nil, clock.Now().Add(time.Second))
		other.ExpiresAt = clock.Now().Add(time.Minute)
		ok(t, s.CreateCredential(ctx, other), "create another")

		got, err := s.GetCredentialByHash(ctx, "hash-i1")
		ok(t, err, "find it by hash")
		equal(t, got, iat, "every field round-trips")
		equal(t, listCredIDs(t, s, owner, storage.KindInitialAccessToken), []string{"i1", "i2"}, "listed together, oldest first")

		// Spending a use is an update of the record.
		for range 2 {
			_, err = s.UpdateCredential(ctx, owner, "i1", func(c storage.Credential) (storage.Credential, error) {
				c.Uses++
				c.LastUsedAt = clock.Now()
				return c, nil
			})
			ok(t, err, "spend a use")
		}
		got, err = s.GetCredential(ctx, owner, "i1")
		ok(t, err, "get it")
		equal(t, got.Uses, 2, "uses")

		// An expired token is not found; the other one stays.
		clock.Add(2 * time.Minute)
		_, err = s.GetCredentialByHash(ctx, "hash-i2")
		isErr(t, err, storage.ErrNotFound, "the expired token by hash")
		equal(t, listCredIDs(t, s, owner, storage.KindInitialAccessToken), []string{"i1"}, "live tokens")
		ok(t, s.DeleteCredential(ctx, owner, "i1"), "revoke")
		_, err = s.GetCredentialByHash(ctx, "hash-i1")
		isErr(t, err, storage.ErrNotFound, "a revoked token by hash")
	}},
	{"RegisteredClient", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		c := newClient("dyn")
		c.RegistrationAccessTokenHash, c.PendingApproval = "hash-reg", true
		c.ApplicationType = "native"
		ok(t, s.CreateClient(ctx, c), "create a registered app")
		got, err := s.GetClient(ctx, "dyn")
		ok(t, err, "get it")
		equal(t, got, c, "the registration fields round-trip")
		got, err = s.UpdateClient(ctx, "dyn", func(c storage.Client) (storage.Client, error) {
			c.PendingApproval, c.ApprovedAt = false, clock.Now()
			return c, nil
		})
		ok(t, err, "approve it")
		again, err := s.GetClient(ctx, "dyn")
		ok(t, err, "get it again")
		equal(t, again, got, "approved")
		equal(t, again.RegistrationAccessTokenHash, "hash-reg", "the token hash stays")
		equal(t, again.ApprovedAt.Equal(clock.Now()), true, "the approval time stays")
		equal(t, again.ApplicationType, "native", "the application type stays")
	}},
}
