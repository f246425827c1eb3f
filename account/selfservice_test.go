package account_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// appsFixture is two users with consents and tokens at two apps, and a
// consent of the first to an app that was deleted since.
type appsFixture struct {
	svc          *account.Service
	db           storage.Store
	clock        *testclock.Clock
	alice, bob   storage.User
	signedInAt   time.Time // alice's first sign-in to wiki
	lastWikiUse  time.Time // alice's refresh at wiki
	consentedAt  time.Time
	tokenOf      map[string]string // "user@app" → access token ID
	refreshOf    map[string]string // "user@app" → refresh token hash
	actorOfAlice account.Actor
}

func newAppsFixture(t *testing.T) *appsFixture {
	t.Helper()
	ctx := context.Background()
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 0)
	f := &appsFixture{svc: svc, db: db, clock: clock, alice: newSecurityUser(t, svc, "alice"), bob: newSecurityUser(t, svc, "bob"),
		tokenOf: map[string]string{}, refreshOf: map[string]string{}}
	f.actorOfAlice = account.Actor{Kind: account.ActorUser, UserID: f.alice.ID}
	for _, id := range []string{"wiki", "chat"} {
		if _, _, err := svc.Clients.RegisterClient(ctx, account.SystemActor, account.NewClient{ID: id, Name: "The " + id, RedirectURIs: []string{"https://" + id + ".example/cb"}}); err != nil {
			t.Fatal(err)
		}
	}
	f.consentedAt = clock.Now()
	grant := func(u storage.User, clientID string, scopes ...string) {
		if err := db.PutGrant(ctx, storage.Grant{UserID: u.ID, ClientID: clientID, Scopes: scopes, CreatedAt: f.consentedAt, UpdatedAt: f.consentedAt}, nil); err != nil {
			t.Fatal(err)
		}
	}
	grant(f.alice, "wiki", "openid", "email", "offline_access")
	grant(f.alice, "chat", "openid")
	grant(f.alice, "gone", "openid", "profile") // no such client any more
	grant(f.bob, "wiki", "openid", "email", "offline_access")

	clock.Add(time.Minute)
	f.signedInAt = clock.Now()
	for _, k := range []struct {
		u   storage.User
		app string
	}{{f.alice, "wiki"}, {f.alice, "chat"}, {f.bob, "wiki"}} {
		key := k.u.Username + "@" + k.app
		now := clock.Now()
		r := storage.RefreshToken{Hash: "h-" + key, ID: "r-" + key, FamilyID: "f-" + key, ClientID: k.app, UserID: k.u.ID,
			Scopes: []string{"openid", "offline_access"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour)}
		a := storage.AccessToken{ID: "a-" + key, ClientID: k.app, UserID: k.u.ID, Subject: k.u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.CreateTokens(ctx, a, &r); err != nil {
			t.Fatal(err)
		}
		f.tokenOf[key], f.refreshOf[key] = a.ID, r.Hash
	}
	// alice's wiki refreshes later: its last use moves on.
	clock.Add(time.Hour / 2)
	f.lastWikiUse = clock.Now()
	next := storage.RefreshToken{Hash: "h-alice@wiki-2", ID: "r-alice@wiki-2", FamilyID: "f-alice@wiki", ClientID: "wiki", UserID: f.alice.ID,
		Scopes: []string{"openid", "offline_access"}, AuthTime: f.signedInAt, CreatedAt: f.lastWikiUse, ExpiresAt: f.signedInAt.Add(24 * time.Hour), IdleExpiresAt: f.lastWikiUse.Add(time.Hour)}
	a := storage.AccessToken{ID: "a-alice@wiki-2", ClientID: "wiki", UserID: f.alice.ID, Subject: f.alice.ID, FamilyID: "f-alice@wiki", CreatedAt: f.lastWikiUse, ExpiresAt: f.lastWikiUse.Add(time.Hour)}
	if err := db.RotateRefreshToken(ctx, f.refreshOf["alice@wiki"], next, a); err != nil {
		t.Fatal(err)
	}
	f.tokenOf["alice@wiki"], f.refreshOf["alice@wiki"] = a.ID, next.Hash
	return f
}

// tokensLive tells whether the access and the refresh token of key still work.
func (f *appsFixture) tokensLive(t *testing.T, key string) bool {
	t.Helper()
	ctx := context.Background()
	_, aerr := f.db.GetAccessToken(ctx, f.tokenOf[key])
	_, rerr := f.db.PeekRefreshToken(ctx, f.refreshOf[key])
	for _, err := range []error{aerr, rerr} {
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("tokens of %s: %v", key, err)
		}
	}
	if (aerr == nil) != (rerr == nil) {
		t.Fatalf("tokens of %s: access %v, refresh %v: only one of them went", key, aerr, rerr)
	}
	return aerr == nil
}

func (f *appsFixture) hasGrant(t *testing.T, u storage.User, app string) bool {
	t.Helper()
	_, err := f.db.GetGrant(context.Background(), u.ID, app)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestConnectedAppsListsConsentsWithLastUse(t *testing.T) {
	f := newAppsFixture(t)
	apps, err := f.svc.SignIn.ConnectedApps(context.Background(), f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []account.ConnectedApp{
		{ClientID: "chat", Name: "The chat", Scopes: []string{"openid"}, ConsentedAt: f.consentedAt, FirstConsentAt: f.consentedAt, LastUsedAt: f.signedInAt},
		{ClientID: "gone", Deleted: true, Scopes: []string{"openid", "profile"}, ConsentedAt: f.consentedAt, FirstConsentAt: f.consentedAt},
		{ClientID: "wiki", Name: "The wiki", Scopes: []string{"openid", "email", "offline_access"}, ConsentedAt: f.consentedAt, FirstConsentAt: f.consentedAt, LastUsedAt: f.lastWikiUse},
	}
	if len(apps) != len(want) {
		t.Fatalf("connected apps of alice: %+v, want %+v", apps, want)
	}
	for i := range want {
		got, w := apps[i], want[i]
		if got.ClientID != w.ClientID || got.Name != w.Name || got.Deleted != w.Deleted || strings.Join(got.Scopes, " ") != strings.Join(w.Scopes, " ") ||
			!got.ConsentedAt.Equal(w.ConsentedAt) || !got.FirstConsentAt.Equal(w.FirstConsentAt) || !got.LastUsedAt.Equal(w.LastUsedAt) {
			t.Errorf("app %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
	none, err := f.svc.SignIn.ConnectedApps(context.Background(), "nobody")
	if err != nil || len(none) != 0 {
		t.Errorf("connected apps of a user without consents: %v, %v", none, err)
	}
}

func TestRevokeAppTakesConsentAndTokens(t *testing.T) {
	f := newAppsFixture(t)
	ctx := context.Background()
	if err := f.svc.SignIn.RevokeApp(ctx, f.actorOfAlice, f.alice.ID, "wiki"); err != nil {
		t.Fatal(err)
	}
	if f.hasGrant(t, f.alice, "wiki") {
		t.Error("alice's consent to wiki is still there")
	}
	if f.tokensLive(t, "alice@wiki") {
		t.Error("alice's tokens at wiki still work")
	}
	// The rotated-away link of the family must not come back either.
	if _, err := f.db.GetRefreshToken(ctx, "h-alice@wiki"); !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrTokenReused) {
		t.Errorf("alice's first wiki refresh token: %v", err)
	}
	// Her other app and the other user of the same app keep theirs.
	if !f.hasGrant(t, f.alice, "chat") || !f.tokensLive(t, "alice@chat") {
		t.Error("alice's chat lost its consent or its tokens")
	}
	if !f.hasGrant(t, f.bob, "wiki") || !f.tokensLive(t, "bob@wiki") {
		t.Error("bob's wiki lost its consent or its tokens")
	}

	events, _, err := f.db.ListAudit(ctx, storage.AuditQuery{TargetUserID: f.alice.ID, Types: []string{"consent.revoked"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("consent.revoked events: %+v, want one", events)
	}
	e := events[0]
	if e.ActorKind != account.ActorUser || e.ActorID != f.alice.ID || e.ClientID != "wiki" || !e.Time.Equal(f.clock.Now()) ||
		len(e.Changes) != 1 || e.Changes[0] != (storage.AuditChange{Field: "scopes", Before: "openid email offline_access"}) {
		t.Errorf("audit event: %+v", e)
	}

	// Revoking it again: nothing is connected any more.
	if err := f.svc.SignIn.RevokeApp(ctx, f.actorOfAlice, f.alice.ID, "wiki"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("revoke again: %v, want not found", err)
	}
	// An app that was deleted is revoked the same way.
	if err := f.svc.SignIn.RevokeApp(ctx, f.actorOfAlice, f.alice.ID, "gone"); err != nil {
		t.Errorf("revoke the deleted app: %v", err)
	}
	if f.hasGrant(t, f.alice, "gone") {
		t.Error("the consent to the deleted app is still there")
	}
}

func TestRevokeAppOnlyByItsUser(t *testing.T) {
	f := newAppsFixture(t)
	ctx := context.Background()
	bob := account.Actor{Kind: account.ActorUser, UserID: f.bob.ID}
	if err := f.svc.SignIn.RevokeApp(ctx, bob, f.alice.ID, "chat"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("bob revokes alice's chat: %v, want forbidden", err)
	}
	readOnly := f.actorOfAlice
	readOnly.ReadOnly = true
	if err := f.svc.SignIn.RevokeApp(ctx, readOnly, f.alice.ID, "chat"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("a read-only credential of alice revokes: %v, want forbidden", err)
	}
	// alice names bob's consent to wiki as if it were hers: hers is
	// revoked (she has one too), bob's stays.
	if err := f.svc.SignIn.RevokeApp(ctx, f.actorOfAlice, f.alice.ID, "wiki"); err != nil {
		t.Fatal(err)
	}
	if !f.hasGrant(t, f.alice, "chat") || !f.tokensLive(t, "alice@chat") {
		t.Error("a refused revocation changed alice's chat")
	}
	if !f.hasGrant(t, f.bob, "wiki") || !f.tokensLive(t, "bob@wiki") {
		t.Error("bob's wiki changed")
	}
	if err := f.svc.SignIn.RevokeApp(ctx, bob, f.bob.ID, "chat"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("bob revokes an app he never consented to: %v, want not found", err)
	}
	events, _, err := f.db.ListAudit(ctx, storage.AuditQuery{Types: []string{"consent.revoked"}})
	if err != nil || len(events) != 1 || events[0].TargetUserID != f.alice.ID || events[0].ClientID != "wiki" {
		t.Errorf("consent.revoked events: %+v, %v; want alice's wiki only", events, err)
	}
}

func TestEndUserSession(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 0)
	ctx := context.Background()
	alice, bob := newSecurityUser(t, svc, "alice"), newSecurityUser(t, svc, "bob")
	start := func(u storage.User, ua string) storage.Session {
		_, sess, err := svc.SignIn.StartSession(ctx, u, []string{"pwd"}, "192.0.2.7", ua)
		if err != nil {
			t.Fatal(err)
		}
		return sess
	}
	laptop := start(alice, "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	phone := start(alice, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)")
	bobs := start(bob, "curl/8")
	live := func(s storage.Session) bool {
		_, err := db.GetSession(ctx, s.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	asAlice := account.Actor{Kind: account.ActorUser, UserID: alice.ID}

	// bob's session named on alice's account: not hers, nothing changes.
	if _, err := svc.SignIn.EndUserSession(ctx, asAlice, alice.ID, account.SessionHandle(bobs)); account.ErrorCode(err) != account.NotFound {
		t.Errorf("end bob's session as alice: %v, want not found", err)
	}
	// Nor may she end it on his account.
	if _, err := svc.SignIn.EndUserSession(ctx, asAlice, bob.ID, account.SessionHandle(bobs)); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("end bob's session on his account as alice: %v, want forbidden", err)
	}
	// The session's ID (the cookie's hash) is not its handle.
	if _, err := svc.SignIn.EndUserSession(ctx, asAlice, alice.ID, laptop.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("end by the session's ID: %v, want not found", err)
	}
	if !live(bobs) || !live(laptop) || !live(phone) {
		t.Fatal("a refused end changed the sessions")
	}

	ended, err := svc.SignIn.EndUserSession(ctx, asAlice, alice.ID, account.SessionHandle(laptop))
	if err != nil {
		t.Fatal(err)
	}
	if ended.ID != laptop.ID || live(laptop) || !live(phone) || !live(bobs) {
		t.Errorf("ended %q: laptop live %v, phone live %v, bob live %v", ended.ID, live(laptop), live(phone), live(bobs))
	}
	if _, err := svc.SignIn.EndUserSession(ctx, asAlice, alice.ID, account.SessionHandle(laptop)); account.ErrorCode(err) != account.NotFound {
		t.Errorf("end it again: %v, want not found", err)
	}

	events, _, err := db.ListAudit(ctx, storage.AuditQuery{Types: []string{"session.ended"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].TargetUserID != alice.ID || events[0].ActorID != alice.ID {
		t.Fatalf("session.ended events: %+v, want one for alice", events)
	}
	raw, _ := json.Marshal(events[0])
	if strings.Contains(string(raw), laptop.ID) || strings.Contains(string(raw), account.SessionHandle(laptop)) {
		t.Errorf("the event names the session by its hash: %s", raw)
	}
	if !strings.Contains(string(raw), "Firefox") || !strings.Contains(string(raw), "192.0.2.7") {
		t.Errorf("the event does not say which browser: %s", raw)
	}
}
