package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

func newCredential(id, userID, kind, hash string, webauthnID []byte, now time.Time) storage.Credential {
	return storage.Credential{
		ID: id, UserID: userID, Kind: kind, Name: "cred " + id, Hash: hash, WebAuthnID: webauthnID,
		AllowedNetworks: []string{"10.0.0.0/8"}, CreatedAt: now,
	}
}

var credentialTests = []test{
	{"CreateGetList", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		tok := newCredential("c1", "u1", storage.KindAPIToken, "hash-1", nil, clock.Now())
		tok.Scope = "read-only"
		tok.ValidUntil = clock.Now().Add(time.Hour)
		ok(t, s.CreateCredential(ctx, tok), "create token")
		clock.Advance(time.Second)
		pk := newCredential("c2", "u1", storage.KindPasskey, "", []byte{1, 2, 3}, clock.Now())
		pk.WebAuthn = []byte(`{"id":"AQID"}`)
		ok(t, s.CreateCredential(ctx, pk), "create passkey")

		got, err := s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get token")
		equal(t, got, tok, "get token")
		got, err = s.GetCredentialByHash(ctx, "hash-1")
		ok(t, err, "get token by hash")
		equal(t, got, tok, "get token by hash")
		got, err = s.GetCredentialByWebAuthnID(ctx, []byte{1, 2, 3})
		ok(t, err, "get passkey by webauthn ID")
		equal(t, got, pk, "get passkey by webauthn ID")

		all, err := s.ListCredentials(ctx, "u1", "")
		ok(t, err, "list all")
		equal(t, credIDs(all), []string{"c1", "c2"}, "list all, oldest first")
		keys, err := s.ListCredentials(ctx, "u1", storage.KindPasskey)
		ok(t, err, "list passkeys")
		equal(t, credIDs(keys), []string{"c2"}, "list passkeys")

		_, err = s.GetCredential(ctx, "u2", "c1")
		isErr(t, err, storage.ErrNotFound, "another user's credential")
		_, err = s.GetCredentialByHash(ctx, "nope")
		isErr(t, err, storage.ErrNotFound, "unknown hash")
		_, err = s.GetCredentialByHash(ctx, "")
		isErr(t, err, storage.ErrNotFound, "empty hash")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte{9})
		isErr(t, err, storage.ErrNotFound, "unknown webauthn ID")
	}},
	{"ConflictsWriteNothing", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAPIToken, "hash-1", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c2", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now())), "create passkey")
		isErr(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "hash-x", nil, clock.Now())), storage.ErrConflict, "taken ID")
		isErr(t, s.CreateCredential(ctx, newCredential("c3", "u2", storage.KindAppPassword, "hash-1", nil, clock.Now())), storage.ErrConflict, "taken hash")
		isErr(t, s.CreateCredential(ctx, newCredential("c4", "u2", storage.KindPasskey, "", []byte("wid"), clock.Now())), storage.ErrConflict, "taken webauthn ID")
		_, err := s.GetCredentialByHash(ctx, "hash-x")
		isErr(t, err, storage.ErrNotFound, "a refused credential's hash is not indexed")
		for _, u := range []string{"u1", "u2"} {
			all, err := s.ListCredentials(ctx, u, "")
			ok(t, err, "list")
			if u == "u2" && len(all) != 0 {
				t.Fatalf("refused credentials were stored: %+v", all)
			}
		}
		// The same ID under another user is a different credential.
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u2", storage.KindAppPassword, "hash-2", nil, clock.Now())), "same ID, other user")
	}},
	{"Update", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		c := newCredential("c1", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now())
		ok(t, s.CreateCredential(ctx, c), "create")
		used := clock.Now().Add(time.Minute)
		got, err := s.UpdateCredential(ctx, "u1", "c1", func(c storage.Credential) (storage.Credential, error) {
			c.Name, c.LastUsedAt, c.LastIP = "YubiKey", used, "192.0.2.7"
			return c, nil
		})
		ok(t, err, "update")
		equal(t, got.Name, "YubiKey", "updated name")
		again, err := s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get")
		equal(t, again, got, "stored update")

		for name, change := range map[string]func(*storage.Credential){
			"ID":         func(c *storage.Credential) { c.ID = "other" },
			"UserID":     func(c *storage.Credential) { c.UserID = "u9" },
			"Kind":       func(c *storage.Credential) { c.Kind = storage.KindAPIToken },
			"Hash":       func(c *storage.Credential) { c.Hash = "h" },
			"WebAuthnID": func(c *storage.Credential) { c.WebAuthnID[0] = 'X' },
		} {
			_, err := s.UpdateCredential(ctx, "u1", "c1", func(c storage.Credential) (storage.Credential, error) {
				c.Name = "changed"
				change(&c)
				return c, nil
			})
			if err == nil {
				t.Fatalf("changing %s was accepted", name)
			}
		}
		_, err = s.UpdateCredential(ctx, "u1", "c1", func(c storage.Credential) (storage.Credential, error) {
			c.Name = "changed"
			return c, errBoom
		})
		isErr(t, err, errBoom, "fn error")
		again, err = s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get")
		equal(t, again, got, "refused updates changed nothing")
		_, err = s.UpdateCredential(ctx, "u1", "missing", func(c storage.Credential) (storage.Credential, error) { return c, nil })
		isErr(t, err, storage.ErrNotFound, "update missing")
	}},
	{"ExpiryAndSweep", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		dev := newCredential("d1", "u1", storage.KindTrustedDevice, "dev-hash", nil, clock.Now())
		dev.ExpiresAt = clock.Now().Add(time.Hour)
		ok(t, s.CreateCredential(ctx, dev), "create device")
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "ap-hash", nil, clock.Now())), "create app password")
		clock.Advance(time.Hour)
		_, err := s.GetCredentialByHash(ctx, "dev-hash")
		isErr(t, err, storage.ErrNotFound, "expired device by hash")
		_, err = s.GetCredential(ctx, "u1", "d1")
		isErr(t, err, storage.ErrNotFound, "expired device")
		all, err := s.ListCredentials(ctx, "u1", "")
		ok(t, err, "list")
		equal(t, credIDs(all), []string{"c1"}, "expired credentials are not listed")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.Credentials, 1, "swept credentials")
		_, err = s.GetCredentialByHash(ctx, "ap-hash")
		ok(t, err, "a credential without expiry stays")
		// The swept device's hash can be used again.
		ok(t, s.CreateCredential(ctx, newCredential("d2", "u1", storage.KindTrustedDevice, "dev-hash", nil, clock.Now())), "reuse swept hash")
	}},
	{"Delete", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "h1", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c2", "u1", storage.KindAppPassword, "h2", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c3", "u1", storage.KindPasskey, "", []byte("w"), clock.Now())), "create")
		ok(t, s.DeleteCredential(ctx, "u1", "c1"), "delete")
		isErr(t, s.DeleteCredential(ctx, "u1", "c1"), storage.ErrNotFound, "delete again")
		_, err := s.GetCredentialByHash(ctx, "h1")
		isErr(t, err, storage.ErrNotFound, "deleted hash")
		n, err := s.DeleteCredentials(ctx, "u1", storage.KindAppPassword)
		ok(t, err, "delete app passwords")
		equal(t, n, 1, "deleted app passwords")
		left, err := s.ListCredentials(ctx, "u1", "")
		ok(t, err, "list")
		equal(t, credIDs(left), []string{"c3"}, "the passkey stays")
		n, err = s.DeleteCredentials(ctx, "u1", "")
		ok(t, err, "delete all")
		equal(t, n, 1, "deleted all")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte("w"))
		isErr(t, err, storage.ErrNotFound, "deleted passkey")
	}},
	{"DeleteUserCascades", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAPIToken, "h1", nil, clock.Now())), "create")
		ok(t, s.PutAvatar(ctx, storage.Avatar{UserID: "u1", ContentType: "image/png", Data: []byte{1}, UpdatedAt: clock.Now()}), "put avatar")
		ok(t, s.DeleteUser(ctx, "u1"), "delete user")
		_, err := s.GetCredentialByHash(ctx, "h1")
		isErr(t, err, storage.ErrNotFound, "credential of a deleted user")
		_, err = s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "avatar of a deleted user")
	}},
	{"Avatars", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		_, err := s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "no avatar yet")
		isErr(t, s.DeleteAvatar(ctx, "u1"), storage.ErrNotFound, "delete missing avatar")
		a := storage.Avatar{UserID: "u1", ContentType: "image/png", Data: []byte("png"), UpdatedAt: clock.Now()}
		ok(t, s.PutAvatar(ctx, a), "put")
		a.Data = []byte("newer")
		ok(t, s.PutAvatar(ctx, a), "replace")
		got, err := s.GetAvatar(ctx, "u1")
		ok(t, err, "get")
		equal(t, got, a, "replaced avatar")
		ok(t, s.DeleteAvatar(ctx, "u1"), "delete")
		_, err = s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "deleted avatar")
	}},
	{"ListUserSessions", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		ok(t, s.CreateSession(ctx, newSession("s1", "u1", clock.Now(), time.Hour)), "create s1")
		clock.Advance(time.Minute)
		ok(t, s.CreateSession(ctx, newSession("s2", "u1", clock.Now(), 2*time.Hour)), "create s2")
		ok(t, s.CreateSession(ctx, newSession("s3", "u2", clock.Now(), time.Hour)), "create s3")
		got, err := s.ListUserSessions(ctx, "u1")
		ok(t, err, "list")
		equal(t, sessionIDs(got), []string{"s2", "s1"}, "newest first, own sessions only")
		clock.Advance(time.Hour)
		got, err = s.ListUserSessions(ctx, "u1")
		ok(t, err, "list")
		equal(t, sessionIDs(got), []string{"s2"}, "expired sessions are not listed")
	}},
	{"UserProfileFieldsRoundTrip", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		u := newUser("u1", "alice", "alice@example.com")
		u.RecoveryEmail, u.Theme, u.Roles, u.Source = "r@example.com", "dark", []string{"editor"}, "corp-ldap"
		u.AvatarAt = clock.Now()
		u.CustomData = map[string]string{"team": "blue"}
		u.AppMetadata = map[string]string{"plan": "pro"}
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = []byte{1, 2}, []byte{3}, 42
		u.RecoveryCodes = []string{"h1", "h2"}
		u.AllowedNetworks = []string{"10.0.0.0/8"}
		ok(t, s.CreateUser(ctx, u), "create")
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, got, u, "every field round-trips")
		got, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.CustomData["team"] = "red"
			return u, nil
		})
		ok(t, err, "update")
		again, err := s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, again.CustomData["team"], "red", "map field updated")
	}},
	{"OneTimeTokenData", func(t *testing.T, s storage.Store, clock *testClock) {
		ctx := t.Context()
		tok := storage.OneTimeToken{Hash: "h", Purpose: "webauthn-login", Data: []byte(`{"challenge":"x"}`), CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
		ok(t, s.CreateOneTimeToken(ctx, tok), "create")
		got, err := s.ConsumeOneTimeToken(ctx, "h", "webauthn-login")
		ok(t, err, "consume")
		equal(t, got, tok, "data round-trips")
		_, err = s.ConsumeOneTimeToken(ctx, "h", "webauthn-login")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("second consume: %v", err)
		}
	}},
}

func credIDs(cs []storage.Credential) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func sessionIDs(ss []storage.Session) []string {
	out := []string{}
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}
