package storagetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// RunCopy holds a copy between two backends (keyport migrate) to the
// public API: it fills a store made by from through that API (users with
// identities and a reserved name, groups, apps, a refresh-token family
// rotated twice, sessions, grants, credentials, one-time tokens, the
// audit log, outbox messages in every state, webhooks with deliveries,
// throttles, settings, keys), dumps it, loads the dump into an empty store
// made by to, and checks that every read answers the same on both, that
// the two dumps summarize alike, and that the copy goes on behaving as
// the original: a rotated refresh token presented again still revokes its
// family, and an app's deletion, a user's revocation and the sweep take
// the same records on both. Both stores must be storage.Dumper and
// storage.Loader. afterLoad, when not nil, checks the copy's own state
// (its indexes) before anything else reads or changes it.
func RunCopy(t *testing.T, from, to func(t *testing.T, now func() time.Time) storage.Store, afterLoad func(t *testing.T, s storage.Store)) {
	ctx := context.Background()
	srcClock, dstClock := testclock.At(base), testclock.At(base)
	src := from(t, srcClock.Now)
	fillForCopy(ctx, t, src, srcClock)
	dstClock.Set(srcClock.Now())
	dst := to(t, dstClock.Now)

	var recs []storage.Record
	ok(t, src.(storage.Dumper).Dump(ctx, func(r storage.Record) error {
		recs = append(recs, r)
		return nil
	}), "dump")
	ok(t, dst.(storage.Loader).Load(ctx, recs), "load %d records", len(recs))
	if afterLoad != nil {
		afterLoad(t, dst)
	}

	want, got := readAll(ctx, t, src), readAll(ctx, t, dst)
	sameReads(t, got, want, "after the copy")
	srcSum, err := storage.Summarize(ctx, src.(storage.Dumper))
	ok(t, err, "summarize the source")
	dstSum, err := storage.Summarize(ctx, dst.(storage.Dumper))
	ok(t, err, "summarize the copy")
	equal(t, dstSum, srcSum, "summaries of the source and the copy")
	for _, k := range srcSum {
		if k.Count == 0 {
			t.Errorf("the fixture has no %s record: the copy of that kind goes untested", k.Kind)
		}
	}

	// A second load, of anything, is refused and changes nothing.
	isErr(t, dst.(storage.Loader).Load(ctx, recs[:1]), storage.ErrNotEmpty, "load into the copy again")
	sameReads(t, readAll(ctx, t, dst), want, "after a refused second load")

	// The copy keeps behaving as the original. Same operations on both,
	// same answers.
	for _, s := range []storage.Store{src, dst} {
		// r2 is the link the live r3 replaced, within r3's grace: a retry.
		r, err := s.GetRefreshToken(ctx, "h-r2")
		ok(t, err, "retry of r2")
		equal(t, r.ID, "r3", "a retry of r2 hands out r3")
		// r1 was rotated before that: its reuse revokes family f1.
		_, err = s.GetRefreshToken(ctx, "h-r1")
		isErr(t, err, storage.ErrTokenReused, "reuse of r1")
		_, err = s.PeekRefreshToken(ctx, "h-r3")
		isErr(t, err, storage.ErrNotFound, "r3 after its family's revocation")
		_, err = s.GetAccessToken(ctx, "a3")
		isErr(t, err, storage.ErrNotFound, "a3 after its family's revocation")
		_, err = s.PeekRefreshToken(ctx, "h-q1")
		ok(t, err, "the other family lives on")
	}
	sameReads(t, readAll(ctx, t, dst), readAll(ctx, t, src), "after the reuse")
	n1, err := src.RevokeUserClient(ctx, "u2", "")
	ok(t, err, "revoke u2's tokens in the source")
	n2, err := dst.RevokeUserClient(ctx, "u2", "")
	ok(t, err, "revoke u2's tokens in the copy")
	equal(t, n2, n1, "tokens revoked")
	ok(t, src.DeleteClient(ctx, "app"), "delete app from the source")
	ok(t, dst.DeleteClient(ctx, "app"), "delete app from the copy")
	sameReads(t, readAll(ctx, t, dst), readAll(ctx, t, src), "after revocations and an app's deletion")
	srcClock.Add(40 * 24 * time.Hour)
	dstClock.Add(40 * 24 * time.Hour)
	_, err = src.Sweep(ctx)
	ok(t, err, "sweep the source")
	_, err = dst.Sweep(ctx)
	ok(t, err, "sweep the copy")
	sameReads(t, readAll(ctx, t, dst), readAll(ctx, t, src), "after the sweep")
	srcSum, err = storage.Summarize(ctx, src.(storage.Dumper))
	ok(t, err, "summarize the swept source")
	dstSum, err = storage.Summarize(ctx, dst.(storage.Dumper))
	ok(t, err, "summarize the swept copy")
	equal(t, dstSum, srcSum, "summaries after the sweep")
}

// fillForCopy writes one of everything a store keeps, through the API.
func fillForCopy(ctx context.Context, t *testing.T, s storage.Store, c *testclock.Clock) {
	t.Helper()
	ok(t, s.PutSetting(ctx, "seal_check", []byte("sealed check value")), "setting")
	ok(t, s.PutSetting(ctx, "empty", []byte{}), "empty setting")
	ok(t, s.PutSigningKey(ctx, storage.SigningKey{ID: "k1", Algorithm: "RS256", SealedKey: []byte("sealed k1"), PublicJWK: []byte(`{"kid":"k1"}`),
		CreatedAt: c.Now(), RetiredAt: c.Now().Add(time.Hour), VerifyTill: c.Now().Add(2 * time.Hour)}), "key k1")
	ok(t, s.PutSigningKey(ctx, storage.SigningKey{ID: "k2", Algorithm: "ES256", SealedKey: []byte("sealed k2"), PublicJWK: []byte(`{"kid":"k2"}`),
		CreatedAt: advance(c, time.Second)}), "key k2")
	ok(t, s.PutDirectory(ctx, storage.Directory{ID: "ldap1", Type: "ldap", Settings: []byte(`{"url":"ldap://x"}`), SealedSecret: []byte("sealed bind"),
		CreatedAt: c.Now(), UpdatedAt: c.Now()}), "directory")
	ok(t, s.CreateGroup(ctx, newGroup("g1", "Staff")), "group g1")
	ok(t, s.CreateGroup(ctx, newGroup("g2", "Straße")), "group g2")

	alice := newUser("u1", "alice", "alice@example.com")
	alice.Admin, alice.TOTPSecret, alice.TOTPLastStep = true, []byte("sealed totp"), 12345
	alice.Identities = []storage.Identity{{Connection: "ldap1", Provider: "ldap", UserID: "ext-1"}}
	alice.CustomData, alice.AppMetadata = map[string]string{"k": "v"}, map[string]string{"plan": "gold"}
	alice.RecoveryCodes = []string{"c0de"}
	ok(t, s.CreateUser(ctx, alice), "user u1")
	bob := newUser("u2", "Bob", "BOB@example.com")
	bob.Groups = []string{"STRASSE", "staff"}
	bob.CreatedAt = advance(c, time.Second)
	ok(t, s.CreateUser(ctx, bob), "user u2")
	_, err := s.UpdateUser(ctx, "u2", func(u storage.User) (storage.User, error) {
		u.LastLogin, u.LastIP, u.LoginsCount = c.Now(), "192.0.2.7", 3
		return u, nil
	})
	ok(t, err, "sign u2 in")
	carol := newUser("u3", "carol", "carol@example.com")
	carol.Source, carol.Blocked = "ldap1", true
	ok(t, s.CreateUser(ctx, carol), "user u3")
	ok(t, s.CreateUser(ctx, newUser("u4", "dave", "dave@example.com")), "user u4")
	ok(t, s.DeleteUser(ctx, "u4", c.Now().Add(30*24*time.Hour)), "delete u4, reserving its names")
	ok(t, s.PutAvatar(ctx, storage.Avatar{UserID: "u1", ContentType: "image/png", Data: []byte("\x89PNG"), UpdatedAt: c.Now()}), "avatar")

	ok(t, s.CreateClient(ctx, newClient("app")), "client app")
	ok(t, s.CreateClient(ctx, newClient("m2m")), "client m2m")
	registered := newClient("dyn")
	registered.RegistrationAccessTokenHash, registered.PendingApproval = "hash-reg", true
	ok(t, s.CreateClient(ctx, registered), "registered client dyn")
	iat := newCredential("iat1", storage.InitialAccessTokenOwner, storage.KindInitialAccessToken, "hash-iat1", nil, c.Now())
	iat.ValidUntil, iat.ExpiresAt, iat.MaxUses, iat.Uses, iat.HoldForApproval = c.Now().Add(24*time.Hour), c.Now().Add(24*time.Hour), 3, 1, true
	ok(t, s.CreateCredential(ctx, iat), "initial access token")

	ok(t, s.CreateCredential(ctx, newCredential("pk1", "u2", storage.KindPasskey, "", []byte{1, 2, 3}, c.Now())), "passkey")
	appPw := newCredential("ap1", "u1", storage.KindAppPassword, "hash-ap1", nil, c.Now())
	appPw.ClientID = "app"
	ok(t, s.CreateCredential(ctx, appPw), "app password")
	tok := newCredential("at1", "u1", storage.KindAPIToken, "hash-at1", nil, c.Now())
	tok.Scope, tok.ValidUntil, tok.ExpiresAt = "read-only", c.Now().Add(24*time.Hour), c.Now().Add(48*time.Hour)
	ok(t, s.CreateCredential(ctx, tok), "API token")
	dev := newCredential("td1", "u2", storage.KindTrustedDevice, "hash-td1", nil, c.Now())
	dev.ExpiresAt = c.Now().Add(10 * 24 * time.Hour)
	ok(t, s.CreateCredential(ctx, dev), "trusted device")

	ok(t, s.CreateSession(ctx, newSession("s1", "u1", c.Now(), 12*time.Hour)), "session s1")
	ok(t, s.AddSessionClient(ctx, "s1", "app"), "s1 signed in to app")
	ok(t, s.CreateSession(ctx, newSession("s2", "u2", c.Now(), 50*24*time.Hour)), "session s2")
	ok(t, s.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid", "email"}, CreatedAt: c.Now(), UpdatedAt: c.Now()}, nil), "grant")
	ok(t, s.PutGrant(ctx, storage.Grant{UserID: "u2", ClientID: "m2m", Scopes: []string{}, CreatedAt: c.Now(), UpdatedAt: c.Now()}, nil), "grant")

	// Family f1: r1 rotated to r2, r2 to r3; r3 holds its sealed value
	// for the retry of r2. Family q of u2 at m2m; a machine token.
	r1 := newRefresh("r1", "f1", "u1", "app", advance(c, time.Second), 7*24*time.Hour)
	r1.SID = "sid-1"
	ok(t, s.CreateTokens(ctx, newAccess("a1", "", "u1", "app", c.Now(), time.Hour), &r1), "tokens of f1")
	r2 := newRefresh("r2", "", "", "", advance(c, time.Minute), 7*24*time.Hour)
	r2.SealedValue, r2.GraceUntil = []byte("sealed r2"), c.Now().Add(time.Minute)
	ok(t, s.RotateRefreshToken(ctx, "h-r1", r2, newAccess("a2", "", "u1", "app", c.Now(), time.Hour)), "rotate r1")
	r3 := newRefresh("r3", "", "", "", advance(c, time.Second), 7*24*time.Hour)
	r3.SealedValue, r3.GraceUntil = []byte("sealed r3"), c.Now().Add(time.Hour)
	ok(t, s.RotateRefreshToken(ctx, "h-r2", r3, newAccess("a3", "", "u1", "app", c.Now(), time.Hour)), "rotate r2")
	q1 := newRefresh("q1", "q", "u2", "m2m", c.Now(), 7*24*time.Hour)
	ok(t, s.CreateTokens(ctx, newAccess("b1", "", "u2", "m2m", c.Now(), time.Hour), &q1), "tokens of q")
	ok(t, s.CreateTokens(ctx, newAccess("m1", "", "", "m2m", c.Now(), time.Hour), nil), "machine token")

	ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "ot-email", Purpose: "email_change", UserID: "u1", Data: []byte("new@example.com"),
		CreatedAt: c.Now(), ExpiresAt: c.Now().Add(time.Hour), OnePerUser: true}), "one-per-user token")
	ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "ot-setup", Purpose: "setup", CreatedBy: "u1",
		CreatedAt: c.Now(), ExpiresAt: c.Now().Add(60 * 24 * time.Hour)}), "one-time token")
	for i, uid := range []string{"u1", "u1", "", "u2"} {
		a := attempt(fmt.Sprintf("la%d", i), uid, advance(c, time.Second))
		ok(t, s.AddLoginAttempt(ctx, a), "login attempt %d", i)
	}
	ok(t, s.UpdateThrottles(ctx, []string{"acct\x00alice", "ip\x00192.0.2.9"}, func(th storage.Throttle) (storage.Throttle, error) {
		th.Failures, th.Rounds = []time.Time{c.Now()}, 2
		th.LockedUntil, th.ExpiresAt = c.Now().Add(time.Minute), c.Now().Add(time.Hour)
		return th, nil
	}), "throttles")
	for i, e := range []storage.AuditEvent{
		auditEvent("e1", advance(c, time.Second), "user.created", "u1", "u2"),
		auditEvent("e2", advance(c, time.Second), "user.blocked", "", "u3"),
		auditEvent("e3", advance(c, time.Second), "client.created", "u1", ""),
	} {
		ok(t, s.AppendAudit(ctx, e), "audit event %d", i)
	}

	// Outbox: m1 delivered, m2 failed, m3 retried (pending, attempted),
	// m4 claimed (leased), m5 waiting.
	for _, id := range []string{"m1", "m2", "m3", "m4"} {
		ok(t, s.EnqueueOutbox(ctx, newOutboxMessage(id, "webhook", c.Now())), "enqueue %s", id)
	}
	claimed, err := s.ClaimOutbox(ctx, advance(c, time.Second), time.Minute, 10)
	ok(t, err, "claim")
	equal(t, len(claimed), 4, "claimed")
	ok(t, s.CompleteOutbox(ctx, "m1", c.Now()), "complete m1")
	ok(t, s.FailOutbox(ctx, "m2", c.Now(), "gone"), "fail m2")
	ok(t, s.RetryOutbox(ctx, "m3", c.Now().Add(time.Hour), "timeout"), "retry m3")
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("m5", "mail", c.Now())), "enqueue m5")

	ok(t, s.CreateWebhook(ctx, newWebhook("wh1", "", c.Now())), "webhook wh1")
	ok(t, s.CreateWebhook(ctx, newWebhook("wh2", "u2", advance(c, time.Second))), "webhook wh2")
	for i := range 3 {
		_, err := s.RecordWebhookDelivery(ctx, "wh1", storage.WebhookDelivery{MessageID: fmt.Sprintf("m%d", i), At: advance(c, time.Second),
			Attempt: i + 1, Status: 500 + i, Latency: time.Duration(i) * time.Millisecond}, func(w *storage.Webhook) error {
			w.ConsecutiveFailures++
			return nil
		})
		ok(t, err, "delivery %d", i)
	}
	_, err = s.RecordWebhookDelivery(ctx, "wh2", storage.WebhookDelivery{MessageID: "x", At: c.Now(), Attempt: 1, Status: 204}, nil)
	ok(t, err, "delivery to wh2")
}

// readAll answers every read the fixture's records can be found by,
// each under a name, in a form to compare across backends (errors by
// their kind, cursors by whether there is one).
func readAll(ctx context.Context, t *testing.T, s storage.Store) map[string]any {
	t.Helper()
	out := map[string]any{}
	read := func(name string, v any, err error) {
		switch {
		case errors.Is(err, storage.ErrNotFound):
			out[name] = "not found"
		case err != nil:
			t.Fatalf("%s: %v", name, err)
		default:
			out[name] = v
		}
	}
	users := []string{"u1", "u2", "u3", "u4"}
	for _, id := range users {
		v, err := s.GetUser(ctx, id)
		read("user "+id, v, err)
		ws, err := s.ListWebhooksOf(ctx, id)
		read("webhooks of "+id, ws, err)
		cs, err := s.ListCredentials(ctx, id, "")
		read("credentials of "+id, cs, err)
		ss, err := s.ListUserSessions(ctx, id)
		read("sessions of "+id, ss, err)
		gs, err := s.ListGrants(ctx, id)
		read("grants of "+id, gs, err)
		la, err := s.ListLoginAttempts(ctx, id, 0)
		read("login attempts of "+id, la, err)
		av, err := s.GetAvatar(ctx, id)
		read("avatar of "+id, av, err)
		for _, p := range []string{"email_change", "setup"} {
			ot, err := s.UserOneTimeToken(ctx, id, p)
			read("one-time token of "+id+" for "+p, ot, err)
		}
	}
	la, err := s.ListLoginAttempts(ctx, "", 0)
	read("login attempts of nobody", la, err)
	for _, login := range []string{"alice", "ALICE@example.com", "bob", "bob@EXAMPLE.com", "carol", "dave", "dave@example.com"} {
		u, err := s.GetUserByLogin(ctx, login)
		read("user by login "+login, u, err)
	}
	u, err := s.GetUserByIdentity(ctx, "ldap1", "ext-1")
	read("user by identity", u, err)
	all, err := s.ListUsers(ctx)
	read("users", all, err)
	n, err := s.CountUsers(ctx)
	read("user count", n, err)
	n, err = s.CountAdmins(ctx)
	read("admin count", n, err)
	yes, no := true, false
	for name, q := range map[string]storage.UserQuery{
		"all": {}, "by sign-in": {Sort: storage.UserSortLastSignIn}, "staff": {Group: "staff"}, "strasse": {Group: "strasse"},
		"two-factor": {TwoFactor: &yes}, "one factor": {TwoFactor: &no}, "admins": {Admin: &yes}, "blocked": {Blocked: &yes},
		"search": {Search: "ali"}, "from ldap1": {Source: ptrTo("ldap1")}, "paged": {Limit: 1},
	} {
		p, err := s.SearchUsers(ctx, q)
		read("search "+name, struct {
			IDs  []string
			More bool
		}{idsOf(p.Users, func(u storage.User) string { return u.ID }), p.Next != ""}, err)
	}
	gs, err := s.ListGroups(ctx)
	read("groups", gs, err)
	for _, g := range []string{"g1", "g2"} {
		m, err := s.GroupMembers(ctx, g, "", 100)
		read("members of "+g, m.UserIDs, err)
	}
	cl, err := s.ListClients(ctx)
	read("clients", cl, err)
	iats, err := s.ListCredentials(ctx, storage.InitialAccessTokenOwner, "")
	read("initial access tokens", iats, err)
	for _, h := range []string{"hash-ap1", "hash-at1", "hash-td1", "hash-iat1"} {
		c, err := s.GetCredentialByHash(ctx, h)
		read("credential by hash "+h, c, err)
	}
	c, err := s.GetCredentialByWebAuthnID(ctx, []byte{1, 2, 3})
	read("passkey", c, err)
	for _, id := range []string{"s1", "s2"} {
		v, err := s.GetSession(ctx, id)
		read("session "+id, v, err)
	}
	for _, id := range []string{"a1", "a2", "a3", "b1", "m1"} {
		v, err := s.GetAccessToken(ctx, id)
		read("access token "+id, v, err)
	}
	for _, id := range []string{"r1", "r2", "r3", "q1"} {
		v, err := s.PeekRefreshToken(ctx, "h-"+id)
		read("peek refresh token "+id, v, err)
		v, err = s.GetRefreshTokenByID(ctx, id)
		read("refresh token by ID "+id, v, err)
	}
	for _, name := range []string{"seal_check", "empty"} {
		v, err := s.GetSetting(ctx, name)
		read("setting "+name, v, err)
	}
	keys, err := s.ListSigningKeys(ctx)
	read("signing keys", keys, err)
	dirs, err := s.ListDirectories(ctx)
	read("directories", dirs, err)
	for _, p := range []struct{ hash, purpose string }{{"ot-email", "email_change"}, {"ot-setup", "setup"}} {
		v, err := s.PeekOneTimeToken(ctx, p.hash, p.purpose)
		read("one-time token "+p.hash, v, err)
	}
	th, err := s.GetThrottles(ctx, "acct\x00alice", "ip\x00192.0.2.9", "nobody")
	read("throttles", th, err)
	for name, q := range map[string]storage.AuditQuery{"all": {}, "by u1": {ActorID: "u1"}, "about u3": {TargetUserID: "u3"}} {
		var events []storage.AuditEvent
		for {
			page, next, err := s.ListAudit(ctx, q)
			ok(t, err, "audit %s", name)
			events = append(events, page...)
			if next == "" {
				break
			}
			q.Cursor = next
		}
		out["audit "+name] = events
	}
	for _, state := range []string{"", storage.OutboxPending, storage.OutboxDelivered, storage.OutboxFailed} {
		out["outbox "+state] = listAllOutbox(t, s, storage.OutboxQuery{State: state})
	}
	hooks, err := s.ListWebhooks(ctx)
	read("webhooks", hooks, err)
	for _, id := range []string{"wh1", "wh2"} {
		ds, err := s.ListWebhookDeliveries(ctx, id)
		read("deliveries of "+id, ds, err)
	}
	// Last, since once the reservation has ended it creates u9: a
	// deleted user's name, reserved until then.
	err = s.CreateUser(ctx, newUser("u9", "dave", ""))
	var nc *storage.NameConflict
	if errors.As(err, &nc) {
		out["take a reserved name"] = *nc
	} else {
		read("take a reserved name", "created", err)
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// sameReads compares two readAll results read by read, as JSON (where
// backends differ only between an empty and a nil list, the reads agree).
func sameReads(t *testing.T, got, want map[string]any, when string) {
	t.Helper()
	for name, w := range want {
		g, gj, wj := got[name], comparable(t, got[name]), comparable(t, w)
		if gj != wj {
			t.Errorf("%s, %s:\n got %+v\nwant %+v", when, name, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d reads, want %d", when, len(got), len(want))
	}
}

// comparable is v as JSON, empty lists as null.
func comparable(t *testing.T, v any) string {
	raw, err := json.Marshal(v)
	ok(t, err, "encode a read")
	var tree any
	ok(t, json.Unmarshal(raw, &tree), "decode a read")
	raw, err = json.Marshal(emptyAsNull(tree))
	ok(t, err, "encode a read")
	return string(raw)
}

func emptyAsNull(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i, e := range x {
			x[i] = emptyAsNull(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = emptyAsNull(e)
		}
	}
	return v
}
