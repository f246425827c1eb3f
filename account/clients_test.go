package account_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// clientFixture is the client service on a real bbolt store with one
// confidential app, "wiki", registered by an admin.
type clientFixture struct {
	svc    *account.Service
	db     storage.Store
	clock  *testclock.Clock
	app    storage.Client
	secret string
}

var adminActor = account.Actor{Kind: account.ActorUser, UserID: "admin-1", IP: "192.0.2.7", UserAgent: "test"}

func newClientFixture(t *testing.T) *clientFixture {
	t.Helper()
	clock := newTestClock()
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: clock.Now})
	// adminActor is an administrator: the rules of the apps check it.
	if err := db.CreateUser(t.Context(), storage.User{ID: adminActor.UserID, Username: "admin1", Email: "admin1@example.com", Admin: true, CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	app, secret, err := svc.Clients.RegisterClient(t.Context(), adminActor, account.NewClient{
		ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"},
		PostLogoutRedirectURIs: []string{"https://wiki.example/bye"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &clientFixture{svc: svc, db: db, clock: clock, app: app, secret: secret}
}

// stored is the app as stored now, with its ETag.
func (f *clientFixture) stored(t *testing.T) (storage.Client, string) {
	t.Helper()
	c, etag, err := f.svc.Clients.GetClient(t.Context(), f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c, etag
}

// events returns the audit events of the given types, oldest first.
func (f *clientFixture) events(t *testing.T, types ...string) []storage.AuditEvent {
	t.Helper()
	evs, _, err := f.db.ListAudit(t.Context(), storage.AuditQuery{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

func TestUpdateClientRefusesBadFieldsAndChangesNothing(t *testing.T) {
	f := newClientFixture(t)
	before, etag := f.stored(t)
	long := "https://wiki.example/" + strings.Repeat("x", account.MaxClientURILength)
	many := make([]string, account.MaxClientURIs+1)
	for i := range many {
		many[i] = "https://wiki.example/cb" + strings.Repeat("/x", i)
	}
	manyGroups := make([]string, account.MaxClientGroups+1)
	for i := range manyGroups {
		manyGroups[i] = "g" + strings.Repeat("x", i)
	}
	cases := []struct {
		name  string
		patch account.ClientPatch
		field string
	}{
		{"name too long", account.ClientPatch{Name: ptr(strings.Repeat("n", account.MaxClientNameLength+1))}, "name"},
		{"name with a control character", account.ClientPatch{Name: ptr("Wiki\x07")}, "name"},
		{"http on another host", account.ClientPatch{RedirectURIs: &[]string{"http://wiki.example/cb"}}, "redirect_uris"},
		{"fragment", account.ClientPatch{RedirectURIs: &[]string{"https://wiki.example/cb#top"}}, "redirect_uris"},
		{"relative", account.ClientPatch{RedirectURIs: &[]string{"/cb"}}, "redirect_uris"},
		{"javascript", account.ClientPatch{RedirectURIs: &[]string{"javascript:alert(1)"}}, "redirect_uris"},
		{"custom scheme on a confidential app", account.ClientPatch{RedirectURIs: &[]string{"com.example.app:/cb"}}, "redirect_uris"},
		{"no redirect URI for codes", account.ClientPatch{RedirectURIs: &[]string{}}, "redirect_uris"},
		{"too many redirect URIs", account.ClientPatch{RedirectURIs: &many}, "redirect_uris"},
		{"redirect URI too long", account.ClientPatch{RedirectURIs: &[]string{long}}, "redirect_uris"},
		{"post-logout http elsewhere", account.ClientPatch{PostLogoutRedirectURIs: &[]string{"http://evil.example/bye"}}, "post_logout_redirect_uris"},
		{"post-logout fragment", account.ClientPatch{PostLogoutRedirectURIs: &[]string{"https://wiki.example/bye#x"}}, "post_logout_redirect_uris"},
		{"unknown grant", account.ClientPatch{GrantTypes: &[]string{"password"}}, "grant_types"},
		{"no grant", account.ClientPatch{GrantTypes: &[]string{}}, "grant_types"},
		{"refresh without code", account.ClientPatch{GrantTypes: &[]string{"refresh_token", "client_credentials"}}, "grant_types"},
		{"unknown scope", account.ClientPatch{AllowedScopes: &[]string{"openid", "admin"}}, "allowed_scopes"},
		{"access lifetime too short", account.ClientPatch{AccessTokenLifetime: ptr(time.Second)}, "access_token_lifetime"},
		{"access lifetime too long", account.ClientPatch{AccessTokenLifetime: ptr(25 * time.Hour)}, "access_token_lifetime"},
		{"negative ID lifetime", account.ClientPatch{IDTokenLifetime: ptr(-time.Minute)}, "id_token_lifetime"},
		{"refresh lifetime too long", account.ClientPatch{RefreshTokenLifetime: ptr(366 * 24 * time.Hour)}, "refresh_token_lifetime"},
		{"empty group name", account.ClientPatch{AllowedGroups: &[]string{"staff", "  "}}, "allowed_groups"},
		{"group name too long", account.ClientPatch{AllowedGroups: &[]string{strings.Repeat("g", account.MaxClientGroupLength+1)}}, "allowed_groups"},
		{"too many groups", account.ClientPatch{AllowedGroups: &manyGroups}, "allowed_groups"},
		// A bad field beside good ones changes none of them.
		{"good name, bad URI", account.ClientPatch{Name: ptr("Renamed"), RedirectURIs: &[]string{"http://wiki.example/cb"}}, "redirect_uris"},
	}
	for _, c := range cases {
		_, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, c.patch)
		if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != c.field {
			t.Errorf("%s: want invalid %s, got %v (field %q)", c.name, c.field, err, account.ErrorField(err))
		}
	}
	if after, afterTag := f.stored(t); !reflect.DeepEqual(after, before) || afterTag != etag {
		t.Fatalf("refused updates changed the app:\n%+v\n%+v", before, after)
	}
	if n := len(f.events(t, account.AuditClientUpdated)); n != 0 {
		t.Fatalf("%d client.updated events for refused updates", n)
	}
	// Switching a client_credentials app to public clashes with its
	// grants: the switch is named.
	_, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, account.ClientPatch{GrantTypes: &[]string{"authorization_code", "client_credentials"}})
	if err != nil {
		t.Fatal(err)
	}
	before, etag = f.stored(t)
	_, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, account.ClientPatch{Public: ptr(true)})
	if account.ErrorField(err) != "public" {
		t.Errorf("switch to public with client_credentials: %v (field %q)", err, account.ErrorField(err))
	}
	after, afterTag := f.stored(t)
	if !reflect.DeepEqual(after, before) || afterTag != etag {
		t.Errorf("a refused update changed the app:\n%+v\n%+v", before, after)
	}
	if n := len(f.events(t, account.AuditClientUpdated)); n != 1 {
		t.Errorf("%d client.updated events, want 1 (the one good update)", n)
	}
}

func TestUpdateClientAppliesEditAndAudits(t *testing.T) {
	f := newClientFixture(t)
	_, etag := f.stored(t)
	f.clock.Add(time.Minute)
	got, newTag, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, account.ClientPatch{
		Name:                   ptr("  Team Wiki "),
		RedirectURIs:           &[]string{"https://wiki.example/cb", "http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost:3000/cb"},
		PostLogoutRedirectURIs: &[]string{"http://localhost/bye"},
		AllowedScopes:          &[]string{"openid", "email", "email"},
		AllowedGroups:          &[]string{"Staff", "staff", "ops"},
		AccessTokenJWT:         ptr(true),
		SkipConsent:            ptr(true),
		AccessTokenLifetime:    ptr(5 * time.Minute),
		IDTokenLifetime:        ptr(10 * time.Minute),
		RefreshTokenLifetime:   ptr(48 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	stored, storedTag := f.stored(t)
	if !reflect.DeepEqual(got, stored) || newTag != storedTag || newTag == etag {
		t.Fatalf("returned %+v %s, stored %+v %s (old tag %s)", got, newTag, stored, storedTag, etag)
	}
	if stored.Name != "Team Wiki" || !slices.Equal(stored.AllowedScopes, []string{"openid", "email"}) || !slices.Equal(stored.AllowedGroups, []string{"Staff", "ops"}) ||
		stored.AccessTokenLifetime != 5*time.Minute || stored.IDTokenLifetime != 10*time.Minute || stored.RefreshTokenLifetime != 48*time.Hour ||
		!stored.AccessTokenJWT || !stored.SkipConsent || !stored.UpdatedAt.Equal(f.clock.Now()) || stored.SecretHash != f.app.SecretHash {
		t.Fatalf("stored %+v", stored)
	}
	evs := f.events(t, account.AuditClientUpdated)
	if len(evs) != 1 {
		t.Fatalf("%d client.updated events", len(evs))
	}
	e := evs[0]
	if e.ClientID != "wiki" || e.ActorKind != account.ActorUser || e.ActorID != "admin-1" || e.IP != "192.0.2.7" {
		t.Errorf("event %+v", e)
	}
	changes := map[string]storage.AuditChange{}
	for _, c := range e.Changes {
		changes[c.Field] = c
	}
	if c := changes["name"]; c.Before != "Wiki" || c.After != "Team Wiki" {
		t.Errorf("name change %+v", c)
	}
	if c := changes["access_token_lifetime"]; c.Before != "" || c.After != "5m0s" {
		t.Errorf("lifetime change %+v", c)
	}
	if c := changes["allowed_groups"]; c.Before != "" || c.After != "Staff ops" {
		t.Errorf("groups change %+v", c)
	}
	if _, ok := changes["grant_types"]; ok || len(e.Changes) != 10 {
		t.Errorf("changes %+v", e.Changes)
	}
	raw, _ := json.Marshal(evs)
	if strings.Contains(string(raw), f.app.SecretHash) || strings.Contains(string(raw), f.secret) {
		t.Error("the audit log holds the secret or its hash")
	}

	// The same edit again changes nothing and writes no event.
	if _, again, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", newTag, account.ClientPatch{Name: ptr("Team Wiki")}); err != nil || again != newTag {
		t.Fatalf("no-op update: %v, tag %s → %s", err, newTag, again)
	}
	if n := len(f.events(t, account.AuditClientUpdated)); n != 1 {
		t.Errorf("%d client.updated events after a no-op edit", n)
	}
}

func TestUpdateClientETag(t *testing.T) {
	f := newClientFixture(t)
	_, first := f.stored(t)
	if len(first) != 24 || first[0] != '"' || first[23] != '"' {
		t.Fatalf("ETag %s: want 16 bytes base64url, quoted", first)
	}
	// Admin A saves; admin B, who loaded the same version, is refused.
	_, second, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", first, account.ClientPatch{Name: ptr("A's name")})
	if err != nil {
		t.Fatal(err)
	}
	for _, stale := range []string{first, `W/` + second, `"nope"`} {
		_, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", stale, account.ClientPatch{Name: ptr("B's name")})
		if account.ErrorCode(err) != account.PreconditionFailed {
			t.Fatalf("If-Match %s: want precondition_failed, got %v", stale, err)
		}
	}
	if c, tag := f.stored(t); c.Name != "A's name" || tag != second {
		t.Fatalf("after the refused edits: %q %s", c.Name, tag)
	}
	// A list naming the current version, "*" and no precondition pass.
	for i, ok := range []string{`"old", ` + second, "*", ""} {
		name := "Name " + strings.Repeat("!", i+1)
		c, tag, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", ok, account.ClientPatch{Name: &name})
		if err != nil || c.Name != name {
			t.Fatalf("If-Match %q: %v", ok, err)
		}
		second = tag
	}
	// A rotation changes the record, so the tag too.
	if _, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", 0, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", second, account.ClientPatch{Name: ptr("late")}); account.ErrorCode(err) != account.PreconditionFailed {
		t.Fatalf("tag from before a rotation: %v", err)
	}
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "nobody", "", account.ClientPatch{}); account.ErrorCode(err) != account.NotFound {
		t.Fatalf("unknown app: %v", err)
	}
}

func TestStaticClientsAreReadOnly(t *testing.T) {
	f := newClientFixture(t)
	static := storage.WithStaticClients(f.db, []storage.Client{{ID: "fixed", Name: "Fixed", SecretHash: account.HashSecret("0123456789abcdef")}})
	svc, _ := account.NewTestService(t, account.TestServiceOptions{Store: static, Now: f.clock.Now})
	_, _, err := svc.Clients.UpdateClient(t.Context(), adminActor, "fixed", "", account.ClientPatch{Name: ptr("x")})
	if account.ErrorCode(err) != account.Conflict || !strings.Contains(account.ErrorMessage(err), "configuration file") {
		t.Fatalf("update of a static app: %v", err)
	}
	if _, err := svc.Clients.RotateSecret(t.Context(), adminActor, "fixed", time.Hour, false); account.ErrorCode(err) != account.Conflict || !strings.Contains(account.ErrorMessage(err), "configuration file") {
		t.Fatalf("rotation of a static app: %v", err)
	}
	if c, _, err := svc.Clients.GetClient(t.Context(), "fixed"); err != nil || !c.Static || c.Name != "Fixed" {
		t.Fatalf("static app after the refusals: %+v %v", c, err)
	}
	if evs := f.events(t, account.AuditClientUpdated, account.AuditClientSecretRotated); len(evs) != 0 {
		t.Fatalf("refusals audited as changes: %+v", evs)
	}
}

func TestRotateSecret(t *testing.T) {
	f := newClientFixture(t)
	for _, bad := range []time.Duration{-time.Second, account.MaxSecretGrace + time.Second} {
		if _, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", bad, false); account.ErrorField(err) != "grace" {
			t.Fatalf("grace %s: %v", bad, err)
		}
	}
	if c, _ := f.stored(t); c.SecretHash != f.app.SecretHash {
		t.Fatal("a refused rotation changed the secret")
	}

	secret, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", 48*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.stored(t)
	if secret == f.secret || !account.SecretMatches(secret, c.SecretHash) || !account.SecretMatches(f.secret, c.PreviousSecretHash) ||
		!c.PreviousSecretUntil.Equal(f.clock.Now().Add(48*time.Hour)) {
		t.Fatalf("after rotation: %+v", c)
	}
	// A second rotation keeps only the secret it replaced.
	f.clock.Add(time.Second)
	third, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", 0, false)
	if err != nil {
		t.Fatal(err)
	}
	c, _ = f.stored(t)
	if !account.SecretMatches(third, c.SecretHash) || c.PreviousSecretHash != "" || !c.PreviousSecretUntil.IsZero() {
		t.Fatalf("rotation without grace: %+v", c)
	}
	evs := f.events(t, account.AuditClientSecretRotated)
	if len(evs) != 2 || evs[0].ClientID != "wiki" || !strings.Contains(evs[0].Reason, "until") {
		t.Fatalf("events %+v", evs)
	}
	raw, _ := json.Marshal(evs)
	for _, s := range []string{f.secret, secret, third, f.app.SecretHash, account.HashSecret(secret)} {
		if strings.Contains(string(raw), s) {
			t.Fatal("the audit log holds a secret or its hash")
		}
	}

	// Read-only credentials change nothing.
	ro := adminActor
	ro.ReadOnly = true
	if _, err := f.svc.Clients.RotateSecret(t.Context(), ro, "wiki", 0, false); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("read-only rotation: %v", err)
	}
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), ro, "wiki", "", account.ClientPatch{Name: ptr("x")}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("read-only update: %v", err)
	}
	if err := f.svc.Clients.DeleteClient(t.Context(), ro, "wiki"); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("read-only delete: %v", err)
	}
}

func TestSwitchPublicAndConfidential(t *testing.T) {
	f := newClientFixture(t)
	if _, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", time.Hour, false); err != nil {
		t.Fatal(err)
	}
	// To public: no secret stays, and a native app's scheme is allowed.
	c, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", "", account.ClientPatch{Public: ptr(true), RedirectURIs: &[]string{"com.example.wiki:/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Public || c.SecretHash != "" || c.PreviousSecretHash != "" || !c.PreviousSecretUntil.IsZero() {
		t.Fatalf("public: %+v", c)
	}
	if _, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", 0, false); account.ErrorField(err) != "public" {
		t.Fatalf("rotation of a public app: %v", err)
	}
	// Back to confidential keeps its custom scheme out, then has no secret
	// until the first rotation gives it one.
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", "", account.ClientPatch{Public: ptr(false)}); account.ErrorField(err) != "redirect_uris" {
		t.Fatalf("confidential with a custom scheme: %v", err)
	}
	c, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", "", account.ClientPatch{Public: ptr(false), RedirectURIs: &[]string{"https://wiki.example/cb"}})
	if err != nil || c.Public || c.SecretHash != "" {
		t.Fatalf("confidential: %+v %v", c, err)
	}
	secret, err := f.svc.Clients.RotateSecret(t.Context(), adminActor, "wiki", time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ = f.stored(t); !account.SecretMatches(secret, c.SecretHash) || c.PreviousSecretHash != "" {
		t.Fatalf("first secret: %+v", c)
	}
}

func TestRegisterAndDeleteClientAudited(t *testing.T) {
	f := newClientFixture(t)
	// The rules of managed apps apply at registration too.
	for _, n := range []account.NewClient{
		{ID: "plain", RedirectURIs: []string{"http://app.example/cb"}},
		{ID: "native", RedirectURIs: []string{"com.example.app:/cb"}},
		{ID: "groups", RedirectURIs: []string{"https://a.example/cb"}, AllowedGroups: []string{""}},
		// Path segments no address can name: the app could never be
		// read, edited or deleted through the API or the console.
		{ID: ".", RedirectURIs: []string{"https://a.example/cb"}},
		{ID: "..", RedirectURIs: []string{"https://a.example/cb"}},
		// The console's address for a new app.
		{ID: "new", RedirectURIs: []string{"https://a.example/cb"}},
	} {
		if _, _, err := f.svc.Clients.RegisterClient(t.Context(), adminActor, n); account.ErrorCode(err) != account.Invalid {
			t.Errorf("%s: %v", n.ID, err)
		}
	}
	for _, id := range []string{".", "..", "new"} {
		if _, err := f.db.GetClient(t.Context(), id); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("app %q stored: %v", id, err)
		}
	}
	f.clock.Add(time.Second) // the events of one instant have no order
	if _, _, err := f.svc.Clients.RegisterClient(t.Context(), adminActor, account.NewClient{ID: "native", Public: true, RedirectURIs: []string{"com.example.app:/cb"}}); err != nil {
		t.Fatal(err)
	}
	cli := account.Actor{Kind: account.ActorCLI}
	f.clock.Add(time.Second)
	if err := f.svc.Clients.DeleteClient(t.Context(), cli, "native"); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, account.AuditClientCreated, account.AuditClientDeleted)
	if len(evs) != 3 || evs[0].ClientID != "wiki" || evs[1].ClientID != "native" || evs[2].Type != account.AuditClientDeleted || evs[2].ActorKind != account.ActorCLI {
		t.Fatalf("events %+v", evs)
	}
	created := map[string]string{}
	for _, c := range evs[0].Changes {
		created[c.Field] = c.After
	}
	if created["redirect_uris"] != "https://wiki.example/cb" || created["name"] != "Wiki" {
		t.Errorf("created %+v", evs[0].Changes)
	}
	raw, _ := json.Marshal(evs)
	if strings.Contains(string(raw), f.app.SecretHash) || strings.Contains(string(raw), f.secret) {
		t.Error("the audit log holds the secret or its hash")
	}
}

func TestMayUseClient(t *testing.T) {
	app := storage.Client{ID: "wiki", Name: "Team Wiki", AllowedGroups: []string{"Staff", "Ops"}}
	for _, c := range []struct {
		groups []string
		ok     bool
	}{{nil, false}, {[]string{"guests"}, false}, {[]string{"guests", "STAFF"}, true}, {[]string{"ops"}, true}, {[]string{"staff-2"}, false}} {
		err := account.MayUseClient(storage.User{Groups: c.groups}, app)
		if (err == nil) != c.ok {
			t.Errorf("groups %v: %v", c.groups, err)
		}
		if err != nil && (account.ErrorCode(err) != account.Forbidden || !errors.Is(err, account.ErrNotInAppGroups) ||
			account.ErrorMessage(err) != "Your account is not allowed to use Team Wiki. Ask an administrator.") {
			t.Errorf("refusal %v", err)
		}
	}
	if err := account.MayUseClient(storage.User{}, storage.Client{Name: "Open"}); err != nil {
		t.Errorf("an app without groups refused: %v", err)
	}
}

// TestFlowAllowedGroups: a person outside the app's groups, signing in or
// holding a session, is told why and the record ends with access_denied
// for the app (prompt=none fails at once); a member goes on to consent.
func TestFlowAllowedGroups(t *testing.T) {
	f := newFlowFixture(t)
	ctx := t.Context()
	if _, _, err := f.svc.Clients.UpdateClient(ctx, cliActor, f.app.ID, "", account.ClientPatch{AllowedGroups: &[]string{"Staff"}}); err != nil {
		t.Fatal(err)
	}
	v := f.signedInVisitor(t)
	a := f.request(t)
	step := f.next(t, a, v)
	if step.Kind != account.StepDenied || step.Code != "access_denied" || step.Client.ID != f.app.ID ||
		account.ErrorMessage(step.Refusal) != "Your account is not allowed to use Wiki. Ask an administrator." {
		t.Fatalf("non-member: %+v", step)
	}
	if err := f.flow.Apply(ctx, a, step, v); err != nil {
		t.Fatal(err)
	}
	if stored, _ := f.db.GetAuthRequest(ctx, a.ID); stored.FailCode != "access_denied" || stored.Completed {
		t.Fatalf("record after the refusal: %+v", stored)
	}
	if s := f.next(t, f.request(t, "none"), v); s.Kind != account.StepFail || s.Code != "access_denied" {
		t.Fatalf("non-member, prompt=none: %+v", s)
	}

	u, err := f.db.UpdateUser(ctx, f.user.ID, func(u storage.User) (storage.User, error) {
		u.Groups = []string{"guests", "staff"}
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	v.User = &u
	if s := f.next(t, f.request(t), v); s.Kind != account.StepConsent {
		t.Fatalf("member: %+v", s)
	}
}

// TestUpdateClientKeepsLegacyRedirectURIs: an app an older version
// registered with an http:// redirect URI on another host can still be
// edited; only the URIs an edit adds must meet today's rules.
func TestUpdateClientKeepsLegacyRedirectURIs(t *testing.T) {
	f := newClientFixture(t)
	legacy := storage.Client{ID: "old", Name: "Old", SecretHash: account.HashSecret("0123456789abcdef"), GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"http://intranet.example/cb"}, CreatedAt: f.clock.Now()}
	if err := f.db.CreateClient(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{Name: ptr("Intranet"), AllowedGroups: &[]string{"staff"},
		RedirectURIs: &[]string{"http://intranet.example/cb", "https://intranet.example/cb"}})
	if err != nil || c.Name != "Intranet" {
		t.Fatalf("edit of a legacy app: %+v %v", c, err)
	}
	_, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{RedirectURIs: &[]string{"http://intranet.example/cb", "http://intranet.example/cb2"}})
	if account.ErrorField(err) != "redirect_uris" {
		t.Fatalf("a new http:// URI on another host: %v", err)
	}
}

// TestClientRulesRefuseNonAdmins: a person who is not an active
// administrator may not register, edit, rotate the secret of or delete an
// app, whatever credential they hold; nothing changes and nothing is
// audited. The HTTP layers check this too; the rules do not rely on it.
func TestClientRulesRefuseNonAdmins(t *testing.T) {
	f := newClientFixture(t)
	ctx := t.Context()
	if err := f.db.CreateUser(ctx, storage.User{ID: "plain-1", Username: "plain", Email: "plain@example.com", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateUser(ctx, storage.User{ID: "blocked-admin", Username: "blocked", Email: "blocked@example.com", Admin: true, Blocked: true, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	before, etag := f.stored(t)
	eventsBefore := len(f.events(t))
	for _, id := range []string{"plain-1", "blocked-admin", "nobody"} {
		a := account.Actor{Kind: account.ActorUser, UserID: id}
		if _, _, err := f.svc.Clients.RegisterClient(ctx, a, account.NewClient{ID: "mine", RedirectURIs: []string{"https://mine.example/cb"}}); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s registers an app: %v", id, err)
		}
		if _, _, err := f.svc.Clients.UpdateClient(ctx, a, f.app.ID, etag, account.ClientPatch{AllowedScopes: &[]string{"openid"}}); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s edits an app: %v", id, err)
		}
		if _, err := f.svc.Clients.RotateSecret(ctx, a, f.app.ID, 0, false); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s rotates an app's secret: %v", id, err)
		}
		if err := f.svc.Clients.DeleteClient(ctx, a, f.app.ID); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s deletes an app: %v", id, err)
		}
	}
	if after, _ := f.stored(t); !reflect.DeepEqual(before, after) {
		t.Errorf("the app changed:\n%+v\n%+v", before, after)
	}
	if _, err := f.db.GetClient(ctx, "mine"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("an app was registered: %v", err)
	}
	if n := len(f.events(t)); n != eventsBefore {
		t.Errorf("%d audit events written by refused actions", n-eventsBefore)
	}
}

// An app may be registered for the device authorization grant (RFC 8628),
// with refresh tokens and without the code grant or redirect URIs, public
// or confidential.
func TestDeviceCodeGrant(t *testing.T) {
	f := newClientFixture(t)
	_, etag := f.stored(t)
	grants := []string{account.GrantDeviceCode, account.GrantRefreshToken}
	c, etag, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, account.ClientPatch{GrantTypes: &grants, RedirectURIs: &[]string{}})
	if err != nil {
		t.Fatalf("device code and refresh tokens without codes: %v", err)
	}
	if !slices.Equal(c.GrantTypes, []string{account.GrantRefreshToken, account.GrantDeviceCode}) {
		t.Errorf("grant types %v", c.GrantTypes)
	}
	_, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", etag, account.ClientPatch{GrantTypes: &[]string{"urn:ietf:params:oauth:grant-type:device-code"}})
	if account.ErrorField(err) != "grant_types" {
		t.Errorf("a misspelt URN: %v", err)
	}
}

// A URI listed twice is stored once, at registration and at an edit.
func TestClientURIsListedOnce(t *testing.T) {
	f := newClientFixture(t)
	c, _, err := f.svc.Clients.RegisterClient(t.Context(), adminActor, account.NewClient{ID: "twice",
		RedirectURIs:           []string{"https://a.example/cb", "https://b.example/cb", "https://a.example/cb"},
		PostLogoutRedirectURIs: []string{"https://a.example/bye", "https://a.example/bye"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.RedirectURIs, []string{"https://a.example/cb", "https://b.example/cb"}) || !slices.Equal(c.PostLogoutRedirectURIs, []string{"https://a.example/bye"}) {
		t.Errorf("registered: %q %q", c.RedirectURIs, c.PostLogoutRedirectURIs)
	}
	c, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "twice", "", account.ClientPatch{RedirectURIs: &[]string{"https://c.example/cb", "https://c.example/cb"}})
	if err != nil || !slices.Equal(c.RedirectURIs, []string{"https://c.example/cb"}) {
		t.Errorf("edited: %q %v", c.RedirectURIs, err)
	}
	if stored, _ := f.db.GetClient(t.Context(), "twice"); !slices.Equal(stored.RedirectURIs, []string{"https://c.example/cb"}) {
		t.Errorf("stored: %q", stored.RedirectURIs)
	}
}
