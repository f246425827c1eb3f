package storagetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

func newCredential(id, userID, kind, hash string, webauthnID []byte, now time.Time) storage.Credential {
	return storage.Credential{
		ID: id, UserID: userID, Kind: kind, Name: "cred " + id, Hash: hash, WebAuthnID: webauthnID,
		AllowedNetworks: []string{"10.0.0.0/8"}, CreatedAt: now,
	}
}

// listCredIDs lists a user's credentials of kind and returns their IDs.
func listCredIDs(t *testing.T, s storage.Store, userID, kind string) []string {
	t.Helper()
	cs, err := s.ListCredentials(t.Context(), userID, kind)
	ok(t, err, "list %q credentials of %s", kind, userID)
	return credIDs(cs)
}

var credentialTests = []test{
	{"CreateGetList", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		// Created newest-ID first, so ID order and age order disagree.
		tok := newCredential("c9", "u1", storage.KindAPIToken, "hash-1", nil, clock.Now())
		tok.Scope = "read-only"
		tok.ValidUntil = clock.Now().Add(time.Hour)
		tok.ExpiresAt = clock.Now().Add(2 * time.Hour)
		tok.LastUsedAt, tok.LastIP = clock.Now(), "192.0.2.9"
		ok(t, s.CreateCredential(ctx, tok), "create token")
		clock.Add(time.Second)
		pk := newCredential("c5", "u1", storage.KindPasskey, "", []byte{1, 2, 3}, clock.Now())
		pk.WebAuthn = []byte(`{"id":"AQID"}`)
		ok(t, s.CreateCredential(ctx, pk), "create passkey")
		clock.Add(time.Second)
		ap := newCredential("c1", "u1", storage.KindAppPassword, "hash-2", nil, clock.Now())
		ap.ClientID = "mail"
		ok(t, s.CreateCredential(ctx, ap), "create app password")
		clock.Add(time.Second)
		dev := newCredential("c0", "u1", storage.KindTrustedDevice, "hash-3", nil, clock.Now())
		dev.UserAgent, dev.IP = "Firefox", "192.0.2.1"
		ok(t, s.CreateCredential(ctx, dev), "create trusted device")
		// A user whose ID has u1 as a prefix must not leak into u1's lists.
		ok(t, s.CreateCredential(ctx, newCredential("c2", "u10", storage.KindAPIToken, "hash-4", nil, clock.Now())), "create u10's token")

		for _, want := range []storage.Credential{tok, pk, ap, dev} {
			got, err := s.GetCredential(ctx, "u1", want.ID)
			ok(t, err, "get %s", want.ID)
			equal(t, got, want, "get %s: every field round-trips", want.ID)
		}
		got, err := s.GetCredentialByHash(ctx, "hash-1")
		ok(t, err, "get token by hash")
		equal(t, got, tok, "get token by hash")
		got, err = s.GetCredentialByHash(ctx, "hash-3")
		ok(t, err, "get device by hash")
		equal(t, got, dev, "get device by hash")
		got, err = s.GetCredentialByWebAuthnID(ctx, []byte{1, 2, 3})
		ok(t, err, "get passkey by webauthn ID")
		equal(t, got, pk, "get passkey by webauthn ID")

		all, err := s.ListCredentials(ctx, "u1", "")
		ok(t, err, "list all")
		equal(t, all, []storage.Credential{tok, pk, ap, dev}, "list all, oldest first")
		equal(t, listCredIDs(t, s, "u1", storage.KindPasskey), []string{"c5"}, "list passkeys")
		equal(t, listCredIDs(t, s, "u1", storage.KindAppPassword), []string{"c1"}, "list app passwords")
		equal(t, listCredIDs(t, s, "u1", "no-such-kind"), []string{}, "list an unknown kind")
		equal(t, listCredIDs(t, s, "u10", ""), []string{"c2"}, "list u10")
		equal(t, listCredIDs(t, s, "u2", ""), []string{}, "list a user without credentials")

		_, err = s.GetCredential(ctx, "u2", "c9")
		isErr(t, err, storage.ErrNotFound, "another user's credential")
		_, err = s.GetCredential(ctx, "u1", "c2")
		isErr(t, err, storage.ErrNotFound, "u10's credential under u1")
		_, err = s.GetCredential(ctx, "u1", "nope")
		isErr(t, err, storage.ErrNotFound, "unknown credential")
		_, err = s.GetCredentialByHash(ctx, "nope")
		isErr(t, err, storage.ErrNotFound, "unknown hash")
		_, err = s.GetCredentialByHash(ctx, "")
		isErr(t, err, storage.ErrNotFound, "empty hash")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte{9})
		isErr(t, err, storage.ErrNotFound, "unknown webauthn ID")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte{1, 2})
		isErr(t, err, storage.ErrNotFound, "a prefix of a webauthn ID")
		_, err = s.GetCredentialByWebAuthnID(ctx, nil)
		isErr(t, err, storage.ErrNotFound, "empty webauthn ID")
	}},
	{"CreateRefusesIncomplete", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		for name, c := range map[string]storage.Credential{
			"no ID":   newCredential("", "u1", storage.KindAPIToken, "h1", nil, clock.Now()),
			"no user": newCredential("c1", "", storage.KindAPIToken, "h1", nil, clock.Now()),
			"no kind": newCredential("c1", "u1", "", "h1", nil, clock.Now()),
		} {
			if err := s.CreateCredential(ctx, c); err == nil {
				t.Fatalf("a credential with %s was accepted", name)
			}
		}
		_, err := s.GetCredentialByHash(ctx, "h1")
		isErr(t, err, storage.ErrNotFound, "refused credentials are not stored")
	}},
	{"ConflictsWriteNothing", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		tok := newCredential("c1", "u1", storage.KindAPIToken, "hash-1", nil, clock.Now())
		pk := newCredential("c2", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now().Add(time.Second))
		ok(t, s.CreateCredential(ctx, tok), "create")
		ok(t, s.CreateCredential(ctx, pk), "create passkey")

		isErr(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "hash-x", []byte("wid-x"), clock.Now())), storage.ErrConflict, "taken ID")
		isErr(t, s.CreateCredential(ctx, newCredential("c3", "u2", storage.KindAppPassword, "hash-1", []byte("wid-y"), clock.Now())), storage.ErrConflict, "taken hash")
		isErr(t, s.CreateCredential(ctx, newCredential("c4", "u2", storage.KindPasskey, "hash-z", []byte("wid"), clock.Now())), storage.ErrConflict, "taken webauthn ID")
		isErr(t, s.CreateCredential(ctx, newCredential("c5", "u1", storage.KindAPIToken, "hash-1", nil, clock.Now())), storage.ErrConflict, "taken hash, same user")

		for _, h := range []string{"hash-x", "hash-z"} {
			_, err := s.GetCredentialByHash(ctx, h)
			isErr(t, err, storage.ErrNotFound, "a refused credential's hash %s is not indexed", h)
		}
		for _, w := range []string{"wid-x", "wid-y"} {
			_, err := s.GetCredentialByWebAuthnID(ctx, []byte(w))
			isErr(t, err, storage.ErrNotFound, "a refused credential's webauthn ID %s is not indexed", w)
		}
		equal(t, listCredIDs(t, s, "u2", ""), []string{}, "refused credentials of u2 are not stored")
		all, err := s.ListCredentials(ctx, "u1", "")
		ok(t, err, "list u1")
		equal(t, all, []storage.Credential{tok, pk}, "u1's credentials are untouched")
		got, err := s.GetCredentialByHash(ctx, "hash-1")
		ok(t, err, "hash-1 still points at the original")
		equal(t, got, tok, "hash-1 still points at the original")
		got, err = s.GetCredentialByWebAuthnID(ctx, []byte("wid"))
		ok(t, err, "wid still points at the original")
		equal(t, got, pk, "wid still points at the original")

		// The same ID under another user is a different credential.
		other := newCredential("c1", "u2", storage.KindAppPassword, "hash-2", nil, clock.Now())
		ok(t, s.CreateCredential(ctx, other), "same ID, other user")
		got, err = s.GetCredential(ctx, "u2", "c1")
		ok(t, err, "get u2's c1")
		equal(t, got, other, "u2's c1")
		got, err = s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get u1's c1")
		equal(t, got, tok, "u1's c1 is untouched")
	}},
	{"Update", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		c := newCredential("c1", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now())
		ok(t, s.CreateCredential(ctx, c), "create")
		used := clock.Now().Add(time.Minute)
		fresh := false
		got, err := s.UpdateCredential(ctx, "u1", "c1", func(arg storage.Credential) (storage.Credential, error) {
			fresh = reflect.DeepEqual(arg, c)
			c := arg
			c.Name, c.LastUsedAt, c.LastIP = "YubiKey", used, "192.0.2.7"
			c.WebAuthn = []byte(`{"signCount":2}`)
			c.AllowedNetworks = append(c.AllowedNetworks, "192.0.2.0/24")
			return c, nil
		})
		ok(t, err, "update")
		equal(t, fresh, true, "fn gets the stored credential")
		want := c
		want.Name, want.LastUsedAt, want.LastIP = "YubiKey", used, "192.0.2.7"
		want.WebAuthn = []byte(`{"signCount":2}`)
		want.AllowedNetworks = []string{"10.0.0.0/8", "192.0.2.0/24"}
		equal(t, got, want, "update result")
		again, err := s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get")
		equal(t, again, want, "stored update")
		byID, err := s.GetCredentialByWebAuthnID(ctx, []byte("wid"))
		ok(t, err, "get by webauthn ID after update")
		equal(t, byID, want, "the index still finds the updated passkey")

		for name, change := range map[string]func(*storage.Credential){
			"ID":              func(c *storage.Credential) { c.ID = "other" },
			"UserID":          func(c *storage.Credential) { c.UserID = "u9" },
			"Kind":            func(c *storage.Credential) { c.Kind = storage.KindAPIToken },
			"Hash":            func(c *storage.Credential) { c.Hash = "h" },
			"WebAuthnID":      func(c *storage.Credential) { c.WebAuthnID[0] = 'X' },
			"WebAuthnID gone": func(c *storage.Credential) { c.WebAuthnID = nil },
		} {
			_, err := s.UpdateCredential(ctx, "u1", "c1", func(c storage.Credential) (storage.Credential, error) {
				c.Name = "changed"
				change(&c)
				return c, nil
			})
			if err == nil {
				t.Fatalf("changing %s was accepted", name)
			}
			again, err := s.GetCredential(ctx, "u1", "c1")
			ok(t, err, "get after refusing %s", name)
			equal(t, again, want, "refused change of %s wrote nothing", name)
		}
		_, err = s.UpdateCredential(ctx, "u1", "c1", func(c storage.Credential) (storage.Credential, error) {
			c.Name = "changed"
			return c, errBoom
		})
		isErr(t, err, errBoom, "fn error")
		again, err = s.GetCredential(ctx, "u1", "c1")
		ok(t, err, "get")
		equal(t, again, want, "refused updates changed nothing")
		_, err = s.GetCredential(ctx, "u9", "c1")
		isErr(t, err, storage.ErrNotFound, "a refused user change created nothing")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte("Xid"))
		isErr(t, err, storage.ErrNotFound, "a refused webauthn ID change indexed nothing")

		// The hash of a credential that has one cannot be dropped either.
		ok(t, s.CreateCredential(ctx, newCredential("c2", "u1", storage.KindAppPassword, "h2", nil, clock.Now())), "create app password")
		_, err = s.UpdateCredential(ctx, "u1", "c2", func(c storage.Credential) (storage.Credential, error) {
			c.Hash = ""
			return c, nil
		})
		if err == nil {
			t.Fatal("dropping the hash was accepted")
		}
		_, err = s.GetCredentialByHash(ctx, "h2")
		ok(t, err, "the hash stays indexed")

		called := false
		_, err = s.UpdateCredential(ctx, "u1", "missing", func(c storage.Credential) (storage.Credential, error) {
			called = true
			return c, nil
		})
		isErr(t, err, storage.ErrNotFound, "update missing")
		equal(t, called, false, "fn called for a missing credential")
		_, err = s.UpdateCredential(ctx, "u2", "c1", func(c storage.Credential) (storage.Credential, error) { return c, nil })
		isErr(t, err, storage.ErrNotFound, "update another user's credential")
	}},
	{"UpdateCarriesOutboxMessages", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx, now := t.Context(), clock.Now()
		msg := func(id string) storage.OutboxMessage { return newOutboxMessage(id, "mail", now) }
		outboxIDs := func() []string {
			got, _, err := s.ListOutbox(ctx, storage.OutboxQuery{Limit: 100})
			ok(t, err, "list outbox")
			ids := []string{}
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			slices.Sort(ids)
			return ids
		}
		ok(t, s.CreateCredential(ctx, newCredential("t1", "u1", storage.KindAPIToken, "h1", nil, now)), "create")
		got, err := s.UpdateCredential(ctx, "u1", "t1", func(c storage.Credential) (storage.Credential, error) {
			c.ExpiryWarnedAt = now
			return c, nil
		}, msg("m1"))
		ok(t, err, "update with a message")
		equal(t, got.ExpiryWarnedAt.Equal(now), true, "ExpiryWarnedAt returned")
		again, err := s.GetCredential(ctx, "u1", "t1")
		ok(t, err, "get")
		equal(t, again.ExpiryWarnedAt.Equal(now), true, "ExpiryWarnedAt stored")
		equal(t, outboxIDs(), []string{"m1"}, "the message is committed with the change")
		// A refused change commits no message, and a taken message ID
		// refuses the change.
		_, err = s.UpdateCredential(ctx, "u1", "t1", func(c storage.Credential) (storage.Credential, error) { return c, errBoom }, msg("m2"))
		isErr(t, err, errBoom, "fn error")
		_, err = s.UpdateCredential(ctx, "u1", "t1", func(c storage.Credential) (storage.Credential, error) {
			c.Name = "renamed"
			return c, nil
		}, msg("m1"))
		isErr(t, err, storage.ErrConflict, "a taken message ID")
		again, err = s.GetCredential(ctx, "u1", "t1")
		ok(t, err, "get")
		equal(t, again.Name, "cred t1", "the refused change wrote nothing")
		_, err = s.UpdateCredential(ctx, "u1", "missing", func(c storage.Credential) (storage.Credential, error) { return c, nil }, msg("m3"))
		isErr(t, err, storage.ErrNotFound, "update missing")
		equal(t, outboxIDs(), []string{"m1"}, "refused updates queued nothing")
	}},
	{"ListExpiringTokens", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx, now := t.Context(), clock.Now()
		day := 24 * time.Hour
		token := func(id, user string, validFor time.Duration, change func(*storage.Credential)) {
			c := newCredential(id, user, storage.KindAPIToken, "hash-"+id, nil, now)
			if validFor != 0 {
				c.ValidUntil = now.Add(validFor)
			}
			if change != nil {
				change(&c)
			}
			ok(t, s.CreateCredential(ctx, c), "create %s", id)
		}
		token("soon", "u1", 3*day, nil)
		token("soon2", "u2", 6*day, nil)
		token("later", "u1", 30*day, nil)
		token("never", "u1", 0, nil)
		token("past", "u1", -day, nil)
		token("warned", "u2", 2*day, func(c *storage.Credential) { c.ExpiryWarnedAt = now })
		token("swept", "u2", 2*day, func(c *storage.Credential) { c.ExpiresAt = now.Add(-time.Second) })
		ap := newCredential("app", "u1", storage.KindAppPassword, "hash-app", nil, now)
		ap.ValidUntil = now.Add(day)
		ok(t, s.CreateCredential(ctx, ap), "create app password")
		got, err := s.ListExpiringTokens(ctx, now, now.Add(7*day), 0)
		ok(t, err, "list")
		ids := credIDs(got)
		slices.Sort(ids)
		equal(t, ids, []string{"soon", "soon2"}, "expiring tokens")
		got, err = s.ListExpiringTokens(ctx, now, now.Add(7*day), 1)
		ok(t, err, "list with a limit")
		equal(t, len(got), 1, "limit")
		// Once warned, a token is not listed again.
		_, err = s.UpdateCredential(ctx, "u1", "soon", func(c storage.Credential) (storage.Credential, error) {
			c.ExpiryWarnedAt = now
			return c, nil
		})
		ok(t, err, "mark warned")
		got, err = s.ListExpiringTokens(ctx, now, now.Add(7*day), 0)
		ok(t, err, "list")
		equal(t, credIDs(got), []string{"soon2"}, "after the warning")
	}},
	{"ExpiryAndSweep", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		dev := newCredential("d1", "u1", storage.KindTrustedDevice, "dev-hash", nil, clock.Now())
		dev.ExpiresAt = clock.Now().Add(time.Hour)
		ok(t, s.CreateCredential(ctx, dev), "create device")
		pk := newCredential("p1", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now())
		pk.ExpiresAt = clock.Now().Add(time.Hour)
		ok(t, s.CreateCredential(ctx, pk), "create expiring passkey")
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "ap-hash", nil, clock.Now())), "create app password")
		late := newCredential("d2", "u1", storage.KindTrustedDevice, "late-hash", nil, clock.Now())
		late.ExpiresAt = clock.Now().Add(3 * time.Hour)
		ok(t, s.CreateCredential(ctx, late), "create a device that lives longer")

		clock.Add(time.Hour - time.Second)
		rep, err := s.Sweep(ctx)
		ok(t, err, "early sweep")
		equal(t, rep.Credentials, 0, "nothing is due before the deadline")
		got, err := s.GetCredentialByHash(ctx, "dev-hash")
		ok(t, err, "device just before its deadline")
		equal(t, got, dev, "device just before its deadline")

		clock.Add(time.Second) // exactly at the deadline
		_, err = s.GetCredentialByHash(ctx, "dev-hash")
		isErr(t, err, storage.ErrNotFound, "expired device by hash")
		_, err = s.GetCredential(ctx, "u1", "d1")
		isErr(t, err, storage.ErrNotFound, "expired device")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte("wid"))
		isErr(t, err, storage.ErrNotFound, "expired passkey by webauthn ID")
		_, err = s.UpdateCredential(ctx, "u1", "d1", func(c storage.Credential) (storage.Credential, error) { return c, nil })
		isErr(t, err, storage.ErrNotFound, "update an expired device")
		equal(t, listCredIDs(t, s, "u1", ""), []string{"c1", "d2"}, "expired credentials are not listed")
		equal(t, listCredIDs(t, s, "u1", storage.KindTrustedDevice), []string{"d2"}, "expired devices are not listed")
		equal(t, listCredIDs(t, s, "u1", storage.KindPasskey), []string{}, "expired passkeys are not listed")

		rep, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep, storage.SweepReport{Credentials: 2}, "sweep report")
		_, err = s.GetCredentialByHash(ctx, "ap-hash")
		ok(t, err, "a credential without expiry stays")
		_, err = s.GetCredentialByHash(ctx, "late-hash")
		ok(t, err, "a credential not yet due stays")
		n, err := s.DeleteCredentials(ctx, "u1", storage.KindTrustedDevice)
		ok(t, err, "delete devices")
		equal(t, n, 1, "only the live device was left to delete")
		// The swept credentials' hash, webauthn ID and IDs can be used again.
		ok(t, s.CreateCredential(ctx, newCredential("d1", "u1", storage.KindTrustedDevice, "dev-hash", nil, clock.Now())), "reuse swept ID and hash")
		ok(t, s.CreateCredential(ctx, newCredential("p1", "u1", storage.KindPasskey, "", []byte("wid"), clock.Now())), "reuse swept webauthn ID")
		rep, err = s.Sweep(ctx)
		ok(t, err, "second sweep")
		equal(t, rep, storage.SweepReport{}, "second sweep report")
	}},
	{"UpdateMovesExpiry", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		now := clock.Now()
		// a gains a deadline, b loses its deadline, c's deadline moves later.
		a := newCredential("a", "u1", storage.KindAPIToken, "ha", nil, now)
		b := newCredential("b", "u1", storage.KindTrustedDevice, "hb", nil, now)
		b.ExpiresAt = now.Add(time.Hour)
		c := newCredential("c", "u1", storage.KindTrustedDevice, "hc", nil, now)
		c.ExpiresAt = now.Add(time.Hour)
		for _, cr := range []storage.Credential{a, b, c} {
			ok(t, s.CreateCredential(ctx, cr), "create %s", cr.ID)
		}
		set := func(id string, at time.Time) {
			t.Helper()
			got, err := s.UpdateCredential(ctx, "u1", id, func(c storage.Credential) (storage.Credential, error) {
				c.ExpiresAt = at
				return c, nil
			})
			ok(t, err, "update %s", id)
			equal(t, got.ExpiresAt, at, "new deadline of %s", id)
		}
		set("a", now.Add(time.Hour))
		set("b", time.Time{})
		set("c", now.Add(3*time.Hour))

		clock.Add(time.Hour)
		equal(t, listCredIDs(t, s, "u1", ""), []string{"b", "c"}, "live after an hour")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.Credentials, 1, "swept credentials")
		_, err = s.GetCredentialByHash(ctx, "ha")
		isErr(t, err, storage.ErrNotFound, "a got a deadline and was swept")
		clock.Add(2 * time.Hour)
		rep, err = s.Sweep(ctx)
		ok(t, err, "second sweep")
		equal(t, rep.Credentials, 1, "second sweep: c at its moved deadline")
		equal(t, listCredIDs(t, s, "u1", ""), []string{"b"}, "b lost its deadline and stays")
	}},
	{"Delete", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u1", storage.KindAppPassword, "h1", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c2", "u1", storage.KindAppPassword, "h2", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c3", "u1", storage.KindPasskey, "", []byte("w"), clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c4", "u1", storage.KindAPIToken, "h4", nil, clock.Now())), "create")
		ok(t, s.CreateCredential(ctx, newCredential("c1", "u2", storage.KindAppPassword, "h5", nil, clock.Now())), "create u2's")

		isErr(t, s.DeleteCredential(ctx, "u1", "nope"), storage.ErrNotFound, "delete unknown")
		isErr(t, s.DeleteCredential(ctx, "u3", "c1"), storage.ErrNotFound, "delete under the wrong user")
		ok(t, s.DeleteCredential(ctx, "u1", "c1"), "delete")
		isErr(t, s.DeleteCredential(ctx, "u1", "c1"), storage.ErrNotFound, "delete again")
		_, err := s.GetCredential(ctx, "u1", "c1")
		isErr(t, err, storage.ErrNotFound, "deleted credential")
		_, err = s.GetCredentialByHash(ctx, "h1")
		isErr(t, err, storage.ErrNotFound, "deleted hash")
		_, err = s.GetCredential(ctx, "u2", "c1")
		ok(t, err, "u2's credential with the same ID stays")

		n, err := s.DeleteCredentials(ctx, "u1", storage.KindAppPassword)
		ok(t, err, "delete app passwords")
		equal(t, n, 1, "deleted app passwords")
		equal(t, listCredIDs(t, s, "u1", ""), []string{"c3", "c4"}, "other kinds stay")
		n, err = s.DeleteCredentials(ctx, "u1", storage.KindAppPassword)
		ok(t, err, "delete app passwords again")
		equal(t, n, 0, "deleted app passwords the second time")
		n, err = s.DeleteCredentials(ctx, "u1", "")
		ok(t, err, "delete all")
		equal(t, n, 2, "deleted all")
		equal(t, listCredIDs(t, s, "u1", ""), []string{}, "nothing left")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte("w"))
		isErr(t, err, storage.ErrNotFound, "deleted passkey")
		_, err = s.GetCredentialByHash(ctx, "h4")
		isErr(t, err, storage.ErrNotFound, "deleted token")
		equal(t, listCredIDs(t, s, "u2", ""), []string{"c1"}, "u2's credentials stay")

		// Deleted hashes and webauthn IDs are free again.
		ok(t, s.CreateCredential(ctx, newCredential("c9", "u2", storage.KindAPIToken, "h1", []byte("w"), clock.Now())), "reuse deleted hash and webauthn ID")
	}},
	{"DeleteUserCascades", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create bob")
		for _, uid := range []string{"u1", "u2"} {
			ok(t, s.CreateCredential(ctx, newCredential("c1", uid, storage.KindAPIToken, "h-"+uid, nil, clock.Now())), "token of %s", uid)
			ok(t, s.CreateCredential(ctx, newCredential("c2", uid, storage.KindPasskey, "", []byte("w-"+uid), clock.Now())), "passkey of %s", uid)
			dev := newCredential("c3", uid, storage.KindTrustedDevice, "d-"+uid, nil, clock.Now())
			dev.ExpiresAt = clock.Now().Add(time.Hour)
			ok(t, s.CreateCredential(ctx, dev), "device of %s", uid)
			ok(t, s.PutAvatar(ctx, storage.Avatar{UserID: uid, ContentType: "image/png", Data: []byte(uid), UpdatedAt: clock.Now()}), "avatar of %s", uid)
		}
		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete user")
		_, err := s.GetCredentialByHash(ctx, "h-u1")
		isErr(t, err, storage.ErrNotFound, "token of a deleted user")
		_, err = s.GetCredentialByWebAuthnID(ctx, []byte("w-u1"))
		isErr(t, err, storage.ErrNotFound, "passkey of a deleted user")
		equal(t, listCredIDs(t, s, "u1", ""), []string{}, "credentials of a deleted user")
		n, err := s.DeleteCredentials(ctx, "u1", "")
		ok(t, err, "delete the deleted user's credentials")
		equal(t, n, 0, "credentials left behind")
		_, err = s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "avatar of a deleted user")

		equal(t, listCredIDs(t, s, "u2", ""), []string{"c1", "c2", "c3"}, "bob's credentials")
		a, err := s.GetAvatar(ctx, "u2")
		ok(t, err, "bob's avatar")
		equal(t, string(a.Data), "u2", "bob's avatar")

		// The device's expiry went with it: a later sweep finds only bob's.
		clock.Add(time.Hour)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.Credentials, 1, "swept credentials")
		// A user without credentials or avatar deletes cleanly.
		ok(t, s.CreateUser(ctx, newUser("u3", "carol", "")), "create carol")
		ok(t, s.DeleteUser(ctx, "u3", time.Time{}), "delete carol")
	}},
	{"Avatars", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		_, err := s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "no avatar yet")
		isErr(t, s.DeleteAvatar(ctx, "u1"), storage.ErrNotFound, "delete missing avatar")
		a := storage.Avatar{UserID: "u1", ContentType: "image/png", Data: []byte("png"), UpdatedAt: clock.Now()}
		ok(t, s.PutAvatar(ctx, a), "put")
		got, err := s.GetAvatar(ctx, "u1")
		ok(t, err, "get")
		equal(t, got, a, "stored avatar")
		b := storage.Avatar{UserID: "u2", ContentType: "image/jpeg", Data: []byte("jpg"), UpdatedAt: clock.Now()}
		ok(t, s.PutAvatar(ctx, b), "put u2's")

		clock.Add(time.Minute)
		a = storage.Avatar{UserID: "u1", ContentType: "image/webp", Data: []byte("newer"), UpdatedAt: clock.Now()}
		ok(t, s.PutAvatar(ctx, a), "replace")
		got, err = s.GetAvatar(ctx, "u1")
		ok(t, err, "get")
		equal(t, got, a, "replaced avatar")
		ok(t, s.DeleteAvatar(ctx, "u1"), "delete")
		_, err = s.GetAvatar(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "deleted avatar")
		isErr(t, s.DeleteAvatar(ctx, "u1"), storage.ErrNotFound, "delete again")
		got, err = s.GetAvatar(ctx, "u2")
		ok(t, err, "u2's avatar")
		equal(t, got, b, "u2's avatar is untouched")
	}},
	{"ListUserSessions", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		s1 := newSession("s1", "u1", clock.Now(), time.Hour)
		ok(t, s.CreateSession(ctx, s1), "create s1")
		clock.Add(time.Minute)
		s2 := newSession("s0", "u1", clock.Now(), 2*time.Hour) // newer but sorts first by ID
		ok(t, s.CreateSession(ctx, s2), "create s0")
		ok(t, s.CreateSession(ctx, newSession("s3", "u2", clock.Now(), time.Hour)), "create s3")
		ok(t, s.CreateSession(ctx, newSession("s4", "u10", clock.Now(), time.Hour)), "create s4 of u10")
		clock.Add(time.Minute)
		ok(t, s.CreateSession(ctx, newSession("s5", "u1", clock.Now(), time.Hour)), "create s5")
		ok(t, s.DeleteSession(ctx, "s5"), "delete s5")

		got, err := s.ListUserSessions(ctx, "u1")
		ok(t, err, "list")
		equal(t, got, []storage.Session{s2, s1}, "newest first, own live sessions only")
		got, err = s.ListUserSessions(ctx, "nobody")
		ok(t, err, "list a user without sessions")
		equal(t, len(got), 0, "sessions of a user without sessions")

		clock.Add(time.Hour - 2*time.Minute) // s1 at its deadline
		got, err = s.ListUserSessions(ctx, "u1")
		ok(t, err, "list")
		equal(t, sessionIDs(got), []string{"s0"}, "expired sessions are not listed")
	}},
	{"UserProfileFieldsRoundTrip", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		u := newUser("u1", "alice", "alice@example.com")
		u.RecoveryEmail, u.Theme, u.Roles, u.Source = "r@example.com", "dark", []string{"editor"}, "corp-ldap"
		u.AvatarAt = clock.Now()
		u.CustomData = map[string]string{"team": "blue", "desk": "4"}
		u.AppMetadata = map[string]string{"plan": "pro"}
		u.PasswordChangedAt = clock.Now().Add(-time.Hour)
		u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = []byte{1, 2}, []byte{3}, 42
		u.RecoveryCodes = []string{"h1", "h2"}
		u.AllowedNetworks = []string{"10.0.0.0/8"}
		u.Blocked, u.LastIP, u.LastLogin, u.LoginsCount = true, "192.0.2.4", clock.Now(), 7
		u.VerifiedEmails = []string{"old@example.com", "alice@example.com"}
		u.GivenName, u.FamilyName, u.Nickname, u.Locale, u.Zoneinfo = "Alice", "Liddell", "ally", "de", "Europe/Berlin"
		u.PhoneNumber, u.PhoneVerified, u.Admin, u.System = "+4915123456789", true, true, true
		u.Identities = []storage.Identity{{Connection: "corp-ldap", Provider: "ldap", UserID: "uuid-1", IsSocial: true}}
		// Every field is set, so none can be lost without this test
		// noticing; a field added to User must be set here too.
		for i, v := 0, reflect.ValueOf(u); i < v.NumField(); i++ {
			if v.Field(i).IsZero() {
				t.Errorf("the round trip does not set User.%s", v.Type().Field(i).Name)
			}
		}
		ok(t, s.CreateUser(ctx, u), "create")
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, got, u, "every field round-trips")
		byLogin, err := s.GetUserByLogin(ctx, "alice")
		ok(t, err, "get by login")
		equal(t, byLogin, u, "every field round-trips through the login index")

		fresh := false
		got, err = s.UpdateUser(ctx, "u1", func(arg storage.User) (storage.User, error) {
			fresh = reflect.DeepEqual(arg, u)
			u := arg
			u.CustomData["team"] = "red"
			delete(u.CustomData, "desk")
			u.AppMetadata = nil
			u.TOTPSecret, u.TOTPPending = u.TOTPPending, nil
			u.TOTPLastStep = 43
			u.RecoveryCodes = u.RecoveryCodes[1:]
			u.Roles = append(u.Roles, "admin")
			u.Theme = "light"
			return u, nil
		})
		ok(t, err, "update")
		equal(t, fresh, true, "fn gets the stored user")
		want := u
		want.CustomData = map[string]string{"team": "red"}
		want.AppMetadata = nil
		want.TOTPSecret, want.TOTPPending, want.TOTPLastStep = []byte{3}, nil, 43
		want.RecoveryCodes = []string{"h2"}
		want.Roles = []string{"editor", "admin"}
		want.Theme = "light"
		equal(t, got, want, "update result")
		again, err := s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, again, want, "stored update")

		_, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.CustomData["team"] = "green"
			u.TOTPSecret[0] = 9
			return u, errBoom
		})
		isErr(t, err, errBoom, "refused update")
		again, err = s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, again, want, "a refused update changed nothing")
	}},
	{"OneTimeTokenData", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		tok := storage.OneTimeToken{Hash: "h", Purpose: "webauthn-login", UserID: "u1", Data: []byte(`{"challenge":"x"}`), CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
		ok(t, s.CreateOneTimeToken(ctx, tok), "create")
		peeked, err := s.PeekOneTimeToken(ctx, "h", "webauthn-login")
		ok(t, err, "peek")
		equal(t, peeked, tok, "data round-trips through peek")
		got, err := s.ConsumeOneTimeToken(ctx, "h", "webauthn-login")
		ok(t, err, "consume")
		equal(t, got, tok, "data round-trips")
		_, err = s.ConsumeOneTimeToken(ctx, "h", "webauthn-login")
		isErr(t, err, storage.ErrNotFound, "second consume")

		binary := storage.OneTimeToken{Hash: "h2", Purpose: "p", Data: []byte{0, 0xff, 0x80, '"'}, CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(time.Minute)}
		ok(t, s.CreateOneTimeToken(ctx, binary), "create with binary data")
		got, err = s.ConsumeOneTimeToken(ctx, "h2", "p")
		ok(t, err, "consume binary")
		equal(t, got, binary, "binary data round-trips")
	}},
}

func credIDs(cs []storage.Credential) []string {
	return idsOf(cs, func(c storage.Credential) string { return c.ID })
}

func sessionIDs(ss []storage.Session) []string {
	return idsOf(ss, func(s storage.Session) string { return s.ID })
}

var identityTests = []test{
	{"LinkFindAndUnlink", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		alice := newUser("u1", "alice", "alice@example.com")
		alice.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "uuid-1"}}
		ok(t, s.CreateUser(ctx, alice), "create alice")
		got, err := s.GetUserByIdentity(ctx, "corp", "uuid-1")
		ok(t, err, "find by identity")
		equal(t, got.ID, "u1", "found user")
		_, err = s.GetUserByIdentity(ctx, "other", "uuid-1")
		isErr(t, err, storage.ErrNotFound, "same ID at another connection")

		bob := newUser("u2", "bob", "bob@example.com")
		bob.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "uuid-1"}}
		isErr(t, s.CreateUser(ctx, bob), storage.ErrConflict, "an identity linked twice")
		_, err = s.GetUser(ctx, "u2")
		isErr(t, err, storage.ErrNotFound, "a refused user is not stored")
		bob.Identities = nil
		ok(t, s.CreateUser(ctx, bob), "create bob")
		_, err = s.UpdateUser(ctx, "u2", func(u storage.User) (storage.User, error) {
			u.Identities = []storage.Identity{{Connection: "corp", UserID: "uuid-1"}}
			return u, nil
		})
		isErr(t, err, storage.ErrConflict, "linking another user's identity")

		_, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "uuid-2"}}
			return u, nil
		})
		ok(t, err, "relink")
		_, err = s.GetUserByIdentity(ctx, "corp", "uuid-1")
		isErr(t, err, storage.ErrNotFound, "the old link is gone")
		got, err = s.GetUserByIdentity(ctx, "corp", "uuid-2")
		ok(t, err, "the new link")
		equal(t, got.ID, "u1", "relinked user")
		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete")
		_, err = s.GetUserByIdentity(ctx, "corp", "uuid-2")
		isErr(t, err, storage.ErrNotFound, "a deleted user's link")
	}},
}

var directoryTests = []test{
	{"PutGetListDelete", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		a := storage.Directory{ID: "corp", Type: "ldap", Settings: []byte(`{"url":"ldap://x"}`), SealedSecret: []byte{1, 2}, CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
		ok(t, s.PutDirectory(ctx, a), "put")
		clock.Add(time.Second)
		b := storage.Directory{ID: "branch", Type: "ldap", Settings: []byte(`{}`), CreatedAt: clock.Now(), UpdatedAt: clock.Now()}
		ok(t, s.PutDirectory(ctx, b), "put second")
		got, err := s.GetDirectory(ctx, "corp")
		ok(t, err, "get")
		equal(t, got, a, "round trip")
		a.Settings = []byte(`{"url":"ldaps://y"}`)
		ok(t, s.PutDirectory(ctx, a), "replace")
		list, err := s.ListDirectories(ctx)
		ok(t, err, "list")
		equal(t, len(list), 2, "count")
		equal(t, list[0].ID, "corp", "oldest first")
		equal(t, string(list[0].Settings), `{"url":"ldaps://y"}`, "replaced settings")
		ok(t, s.DeleteDirectory(ctx, "corp"), "delete")
		isErr(t, s.DeleteDirectory(ctx, "corp"), storage.ErrNotFound, "delete again")
		_, err = s.GetDirectory(ctx, "corp")
		isErr(t, err, storage.ErrNotFound, "get deleted")
		if err := s.PutDirectory(ctx, storage.Directory{Type: "ldap"}); err == nil {
			t.Fatal("a directory without ID was stored")
		}
	}},
}
