package account_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

const adminTestPassword = "correct horse battery"

// adminFixture is a service on a real bbolt file with an administrator
// (root) acting through the console, and a clock the test moves.
type adminFixture struct {
	t     testing.TB
	ctx   context.Context
	clock *testclock.Clock
	svc   *account.Service
	db    storage.Store
	root  storage.User
	actor account.Actor
}

func newAdminFixture(t testing.TB) *adminFixture {
	t.Helper()
	f := &adminFixture{t: t, ctx: context.Background(), clock: testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.svc, f.db = account.NewTestService(t, account.TestServiceOptions{Now: f.clock.Now, Policy: account.Policy{
		Issuer: "https://id.example", SessionLifetime: time.Hour, TrustedDeviceLifetime: 24 * time.Hour,
		MaxLoginAttempts: 100, LoginWindow: time.Minute, MaxLoginAttemptsPerAddress: 5,
	}})
	f.root = f.user("root", true)
	f.actor = account.Actor{Kind: account.ActorUser, UserID: f.root.ID, IP: "192.0.2.9", UserAgent: "console"}
	return f
}

// user creates a local account with adminTestPassword.
func (f *adminFixture) user(name string, admin bool) storage.User {
	f.t.Helper()
	u, err := f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: name, Email: name + "@example.com", Name: "N " + name, Admin: admin, Password: adminTestPassword})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// stored reads the user as the store keeps it.
func (f *adminFixture) stored(id string) storage.User {
	f.t.Helper()
	u, err := f.db.GetUser(f.ctx, id)
	if err != nil {
		f.t.Fatalf("get user %s: %v", id, err)
	}
	return u
}

// events are the audit events about user id, oldest first.
func (f *adminFixture) events(id string) []storage.AuditEvent {
	f.t.Helper()
	evs, _, err := f.db.ListAudit(f.ctx, storage.AuditQuery{TargetUserID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

// lastEvent is the newest audit event of typ about id. (The fixture's
// clock stands still, so events of one moment have no order among
// themselves; tests that check an order move the clock.)
func (f *adminFixture) lastEvent(id, typ string) storage.AuditEvent {
	f.t.Helper()
	evs := f.events(id)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return evs[i]
		}
	}
	f.t.Fatalf("no %s event about %s: %+v", typ, id, evs)
	return storage.AuditEvent{}
}

// signInEverywhere gives u two sessions and a token family (access and
// refresh token) at an app.
func (f *adminFixture) signInEverywhere(u storage.User) {
	f.t.Helper()
	for range 2 {
		if _, _, err := f.svc.SignIn.StartSession(f.ctx, u, []string{"pwd"}, "192.0.2.1", "test"); err != nil {
			f.t.Fatal(err)
		}
	}
	exp := f.clock.Now().Add(time.Hour)
	if err := f.db.CreateTokens(f.ctx, storage.AccessToken{ID: "at-" + u.ID, ClientID: "app", UserID: u.ID, Subject: u.ID, FamilyID: "fam-" + u.ID, CreatedAt: f.clock.Now(), ExpiresAt: exp},
		&storage.RefreshToken{Hash: "rt-" + u.ID, ID: "r-" + u.ID, FamilyID: "fam-" + u.ID, ClientID: "app", UserID: u.ID, CreatedAt: f.clock.Now(), ExpiresAt: exp, IdleExpiresAt: exp}); err != nil {
		f.t.Fatal(err)
	}
}

// signedOut checks that u has no session and that its tokens are gone.
func (f *adminFixture) signedOut(u storage.User) {
	f.t.Helper()
	if left, _ := f.db.ListUserSessions(f.ctx, u.ID); len(left) != 0 {
		f.t.Errorf("%d sessions left", len(left))
	}
	if _, err := f.db.GetAccessToken(f.ctx, "at-"+u.ID); err == nil {
		f.t.Error("the access token still works")
	}
	if _, err := f.db.PeekRefreshToken(f.ctx, "rt-"+u.ID); err == nil {
		f.t.Error("the refresh token still works")
	}
}

// enrolFactors gives u every second factor: TOTP, two passkeys, recovery
// codes and a trusted device; and an API token, which is no factor.
func (f *adminFixture) enrolFactors(u storage.User) (apiToken string) {
	f.t.Helper()
	if _, err := f.db.UpdateUser(f.ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret, u.TOTPLastStep = []byte("sealed-totp-secret"), 42
		u.RecoveryCodes = []string{account.HashSecret("code-1"), account.HashSecret("code-2"), account.HashSecret("code-3")}
		return u, nil
	}); err != nil {
		f.t.Fatal(err)
	}
	for i, name := range []string{"laptop", "phone"} {
		if err := f.db.CreateCredential(f.ctx, storage.Credential{ID: account.NewID(), UserID: u.ID, Kind: storage.KindPasskey, Name: name,
			WebAuthnID: []byte{byte(i), 1, 2, 3}, WebAuthn: []byte(`{"publicKey":"secret-ish"}`), CreatedAt: f.clock.Now()}); err != nil {
			f.t.Fatal(err)
		}
	}
	if _, err := f.svc.Credentials.TrustDevice(f.ctx, u, "192.0.2.1", "Firefox"); err != nil {
		f.t.Fatal(err)
	}
	tok, _, err := f.svc.Credentials.CreateAPIToken(f.ctx, u, account.NewAPIToken{Name: "ci", Scope: account.ScopeReadOnly})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

func ptr[T any](v T) *T { return &v }

func userJSON(t *testing.T, u storage.User) string {
	t.Helper()
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAdminUserDetail(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.signInEverywhere(u)
	apiToken := f.enrolFactors(u)
	appPassword, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, u, "mail", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: "wrong password", IP: "192.0.2.7"}); err == nil {
		t.Fatal("a wrong password signed in")
	}
	app, _, err := f.svc.Clients.RegisterClient(f.ctx, account.SystemActor, account.NewClient{ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.PutGrant(f.ctx, storage.Grant{UserID: u.ID, ClientID: app.ID, Scopes: []string{"openid", "email"}, CreatedAt: f.clock.Now(), UpdatedAt: f.clock.Now()}, nil); err != nil {
		t.Fatal(err)
	}

	d, err := f.svc.Admin.User(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored := f.stored(u.ID)
	if d.ETag != account.UserETag(stored) || !strings.HasPrefix(d.ETag, `"`) || len(d.ETag) != 24 {
		t.Errorf("ETag %s, want %s (quoted base64url of 16 bytes)", d.ETag, account.UserETag(stored))
	}
	if d.User.ID != u.ID || d.User.Username != "alice" || !d.HasPassword || d.SourceName != "" || len(d.Locked) != 0 {
		t.Errorf("user part: %+v", d)
	}
	want := account.Factors{TOTP: true, Passkeys: 2, RecoveryCodesLeft: 3, TrustedDevices: 1}
	if d.Factors != want {
		t.Errorf("factors %+v, want %+v", d.Factors, want)
	}
	if len(d.Sessions) != 2 || len(d.APITokens) != 1 || len(d.AppPasswords) != 1 || len(d.Passkeys) != 2 || len(d.TrustedDevices) != 1 {
		t.Errorf("sessions %d, API tokens %d, app passwords %d, passkeys %d, devices %d", len(d.Sessions), len(d.APITokens), len(d.AppPasswords), len(d.Passkeys), len(d.TrustedDevices))
	}
	if len(d.History) != 1 || d.History[0].Success || d.History[0].IP != "192.0.2.7" {
		t.Errorf("history %+v", d.History)
	}
	if len(d.Consents) != 1 || d.Consents[0].ClientID != "wiki" || !slices.Equal(d.Consents[0].Scopes, []string{"openid", "email"}) {
		t.Errorf("consents %+v", d.Consents)
	}
	// No secret, and no hash of one, anywhere in what the page gets.
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"password hash": stored.PasswordHash, "recovery code hash": stored.RecoveryCodes[0], "API token": apiToken,
		"API token hash": account.HashSecret(apiToken), "app password": appPassword, "TOTP secret": "c2VhbGVkLXRvdHAtc2VjcmV0",
		"passkey key": "secret-ish",
	} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the detail holds the %s", name)
		}
	}
	for _, c := range slices.Concat(d.APITokens, d.AppPasswords, d.TrustedDevices, d.Passkeys) {
		if c.Hash != "" || c.WebAuthn != nil {
			t.Errorf("credential %s keeps its hash or key", c.ID)
		}
	}

	// A sign-in changes the stored user, and so the ETag.
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err != nil {
		t.Fatal(err)
	}
	if d2, _ := f.svc.Admin.User(f.ctx, f.actor, u.ID); d2.ETag == d.ETag {
		t.Error("the ETag did not change with the stored user")
	}
	if _, err := f.svc.Admin.User(f.ctx, f.actor, "nobody"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user: %v", err)
	}
}

func TestAdminUpdateUser(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	d, err := f.svc.Admin.User(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	got, etag, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, d.ETag, account.UserPatch{
		Username: ptr(" alice2 "), Email: ptr("alice@work.example"), EmailVerified: ptr(true), Name: ptr("Alice A."),
		GivenName: ptr("Alice"), FamilyName: ptr("Anders"), Nickname: ptr("Al"), Locale: ptr("de-AT"), Zoneinfo: ptr("Europe/Berlin"),
		PhoneNumber: ptr("+49 151 23456789"), PhoneVerified: ptr(true), Admin: ptr(true), Roles: &[]string{"editor", " viewer", "editor"},
		Groups: &[]string{"staff"}, AppMetadata: &map[string]string{"plan": "pro", "tenant.id": "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := f.stored(u.ID)
	if userJSON(t, got) != userJSON(t, stored) || etag != account.UserETag(stored) || etag == d.ETag {
		t.Fatalf("returned user or ETag is not the stored one:\n%+v\n%+v", got, stored)
	}
	want := storage.User{Username: "alice2", Email: "alice@work.example", EmailVerified: true, Name: "Alice A.", GivenName: "Alice", FamilyName: "Anders",
		Nickname: "Al", Locale: "de", Zoneinfo: "Europe/Berlin", PhoneNumber: "+4915123456789", PhoneVerified: true, Admin: true,
		Roles: []string{"editor", "viewer"}, Groups: []string{"staff"}, AppMetadata: map[string]string{"plan": "pro", "tenant.id": "42"}}
	have := storage.User{Username: stored.Username, Email: stored.Email, EmailVerified: stored.EmailVerified, Name: stored.Name, GivenName: stored.GivenName,
		FamilyName: stored.FamilyName, Nickname: stored.Nickname, Locale: stored.Locale, Zoneinfo: stored.Zoneinfo, PhoneNumber: stored.PhoneNumber,
		PhoneVerified: stored.PhoneVerified, Admin: stored.Admin, Roles: stored.Roles, Groups: stored.Groups, AppMetadata: stored.AppMetadata}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("stored\n%+v\nwant\n%+v", have, want)
	}
	if !stored.UpdatedAt.Equal(f.clock.Now()) || stored.PasswordHash != u.PasswordHash {
		t.Error("UpdatedAt not set, or the password changed")
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice2", Password: adminTestPassword}); err != nil {
		t.Errorf("sign-in under the new username: %v", err)
	}

	e := f.lastEvent(u.ID, "user.updated")
	if e.ActorKind != account.ActorUser || e.ActorID != f.root.ID || e.IP != "192.0.2.9" || e.UserAgent != "console" {
		t.Errorf("event actor: %+v", e)
	}
	changes := map[string]storage.AuditChange{}
	for _, c := range e.Changes {
		changes[c.Field] = c
	}
	for field, ba := range map[string][2]string{
		"username": {"alice", "alice2"}, "email": {"alice@example.com", "alice@work.example"}, "email_verified": {"false", "true"},
		"admin": {"false", "true"}, "roles": {"", "editor, viewer"}, "phone_number": {"", "+4915123456789"}, "locale": {"", "de"},
		"app_metadata.plan": {"", "pro"}, "app_metadata.tenant.id": {"", "42"}, "name": {"N alice", "Alice A."},
	} {
		if c, ok := changes[field]; !ok || c.Before != ba[0] || c.After != ba[1] {
			t.Errorf("change of %s: %+v, want %q → %q", field, c, ba[0], ba[1])
		}
	}
	if len(e.Changes) != 16 {
		t.Errorf("%d changes, want 16 (every field): %+v", len(e.Changes), e.Changes)
	}

	// The same edit again changes nothing: no write, no event. (The
	// sign-in above changed the stored user, and so its ETag.)
	n := len(f.events(u.ID))
	f.clock.Add(time.Minute)
	etag = account.UserETag(f.stored(u.ID))
	again, etag2, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, etag, account.UserPatch{Name: ptr("Alice A."), Roles: &[]string{"editor", "viewer"}})
	if err != nil || etag2 != etag || !again.UpdatedAt.Equal(stored.UpdatedAt) || len(f.events(u.ID)) != n {
		t.Errorf("a no-op edit: err %v, etag %s→%s, events %d→%d", err, etag, etag2, n, len(f.events(u.ID)))
	}

	// Clearing: empty roles and app_metadata; a new address is not verified.
	_, _, err = f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{Roles: &[]string{}, AppMetadata: &map[string]string{}, Email: ptr("new@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.stored(u.ID); s.Roles != nil || s.AppMetadata != nil || s.EmailVerified {
		t.Errorf("after clearing: roles %v, app_metadata %v, verified %v", s.Roles, s.AppMetadata, s.EmailVerified)
	}
	// Moving back to the verified address makes it verified again (the
	// profile's rule).
	if got, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{Email: ptr("alice@work.example")}); err != nil || !got.EmailVerified {
		t.Errorf("back to a verified address: %v, verified %v", err, got.EmailVerified)
	}
}

func TestAdminUpdateUserRefusesBadInputAndChangesNothing(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.user("bob", false)
	before := userJSON(t, f.stored(u.ID))
	events := len(f.events(u.ID))
	many := make([]string, 101)
	for i := range many {
		many[i] = "r" + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
	}
	bigMeta := map[string]string{}
	for i := range 9 {
		bigMeta["k"+string(rune('a'+i))] = strings.Repeat("v", 1000)
	}
	tooManyKeys := map[string]string{}
	for i := range 65 {
		tooManyKeys["k"+strings.Repeat("x", i)] = "v"
	}
	for name, c := range map[string]struct {
		patch account.UserPatch
		code  account.Code
		field string
	}{
		"username pattern":      {account.UserPatch{Username: ptr("-bad")}, account.Invalid, "username"},
		"username empty":        {account.UserPatch{Username: ptr("  ")}, account.Invalid, "username"},
		"username taken":        {account.UserPatch{Username: ptr("BOB")}, account.Conflict, "username"},
		"username is an email":  {account.UserPatch{Username: ptr("bob@example.com")}, account.Invalid, "username"},
		"email syntax":          {account.UserPatch{Email: ptr("not an address")}, account.Invalid, "email"},
		"email empty":           {account.UserPatch{Email: ptr("")}, account.Invalid, "email"},
		"email taken":           {account.UserPatch{Email: ptr("bob@example.com")}, account.Conflict, "email"},
		"name too long":         {account.UserPatch{Name: ptr(strings.Repeat("n", 201))}, account.Invalid, "name"},
		"given name newline":    {account.UserPatch{GivenName: ptr("a\nb")}, account.Invalid, "given_name"},
		"family name too long":  {account.UserPatch{FamilyName: ptr(strings.Repeat("ü", 201))}, account.Invalid, "family_name"},
		"nickname NUL":          {account.UserPatch{Nickname: ptr("a\x00")}, account.Invalid, "nickname"},
		"locale":                {account.UserPatch{Locale: ptr("fr")}, account.Invalid, "locale"},
		"zoneinfo":              {account.UserPatch{Zoneinfo: ptr("Mars/Olympus")}, account.Invalid, "zoneinfo"},
		"phone":                 {account.UserPatch{PhoneNumber: ptr("0151 2345")}, account.Invalid, "phone_number"},
		"phone verified, none":  {account.UserPatch{PhoneVerified: ptr(true)}, account.Invalid, "phone_verified"},
		"roles too many":        {account.UserPatch{Roles: &many}, account.Invalid, "roles"},
		"role with comma":       {account.UserPatch{Roles: &[]string{"a,b"}}, account.Invalid, "roles"},
		"group too long":        {account.UserPatch{Groups: &[]string{strings.Repeat("g", 129)}}, account.Invalid, "groups"},
		"group control char":    {account.UserPatch{Groups: &[]string{"a\tb"}}, account.Invalid, "groups"},
		"app_metadata key":      {account.UserPatch{AppMetadata: &map[string]string{"bad key": "v"}}, account.Invalid, "app_metadata"},
		"app_metadata long key": {account.UserPatch{AppMetadata: &map[string]string{strings.Repeat("k", 65): "v"}}, account.Invalid, "app_metadata"},
		"app_metadata value":    {account.UserPatch{AppMetadata: &map[string]string{"k": strings.Repeat("v", 1025)}}, account.Invalid, "app_metadata"},
		"app_metadata total":    {account.UserPatch{AppMetadata: &bigMeta}, account.Invalid, "app_metadata"},
		"app_metadata keys":     {account.UserPatch{AppMetadata: &tooManyKeys}, account.Invalid, "app_metadata"},
		// One bad field among good ones changes none of them.
		"good and bad": {account.UserPatch{Name: ptr("Fine"), Roles: &[]string{"ok"}, Zoneinfo: ptr("Nowhere/Else")}, account.Invalid, "zoneinfo"},
	} {
		_, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", c.patch)
		if account.ErrorCode(err) != c.code || account.ErrorField(err) != c.field {
			t.Errorf("%s: %v (code %s, field %q), want %s on %q", name, err, account.ErrorCode(err), account.ErrorField(err), c.code, c.field)
		}
	}
	if after := userJSON(t, f.stored(u.ID)); after != before {
		t.Errorf("a refused edit changed the user:\n%s\n%s", before, after)
	}
	if n := len(f.events(u.ID)); n != events {
		t.Errorf("refused edits wrote %d audit events", n-events)
	}
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, "nobody", "", account.UserPatch{Name: ptr("x")}); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user: %v", err)
	}
}

func TestAdminUpdateUserETag(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	d, _ := f.svc.Admin.User(f.ctx, f.actor, u.ID)
	// Another admin's edit in between makes the first admin's ETag stale.
	_, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, d.ETag, account.UserPatch{Nickname: ptr("first")})
	if err != nil {
		t.Fatal(err)
	}
	before := userJSON(t, f.stored(u.ID))
	events := len(f.events(u.ID))
	for _, stale := range []string{d.ETag, `"garbage"`, "W/" + d.ETag, "*"} {
		_, _, err = f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, stale, account.UserPatch{Nickname: ptr("second"), Admin: ptr(true)})
		if account.ErrorCode(err) != account.PreconditionFailed {
			t.Errorf("If-Match %s: %v, want precondition failed", stale, err)
		}
	}
	if userJSON(t, f.stored(u.ID)) != before || len(f.events(u.ID)) != events {
		t.Error("a stale edit changed the user or wrote an event")
	}
	// The current ETag works.
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, account.UserETag(f.stored(u.ID)), account.UserPatch{Nickname: ptr("second")}); err != nil {
		t.Errorf("current ETag: %v", err)
	}
	// Two admins saving at once with the same ETag: the check is inside
	// the store's transaction, so exactly one wins.
	etag := account.UserETag(f.stored(u.ID))
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, etag, account.UserPatch{Nickname: ptr("racer" + strings.Repeat("x", i))})
			errs <- err
		}()
	}
	won := 0
	for range 8 {
		switch err := <-errs; account.ErrorCode(err) {
		case account.PreconditionFailed:
		case account.Internal:
			if err == nil {
				won++
				continue
			}
			t.Errorf("racing save: %v", err)
		default:
			t.Errorf("racing save: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d racing saves with one ETag won, want 1", won)
	}
}

// TestAdminLastAdminRace demotes two admins at once, each by the other:
// one of them must stay.
func TestAdminLastAdminRace(t *testing.T) {
	f := newAdminFixture(t)
	second := f.user("second", true)
	errs := make(chan error, 2)
	for _, id := range []string{f.root.ID, second.ID} {
		go func() {
			_, _, err := f.svc.Admin.UpdateUser(f.ctx, account.Actor{Kind: account.ActorCLI}, id, "", account.UserPatch{Admin: ptr(false)})
			errs <- err
		}()
	}
	refused := 0
	for range 2 {
		if err := <-errs; account.ErrorCode(err) == account.Conflict {
			refused++
		} else if err != nil {
			t.Error(err)
		}
	}
	if refused != 1 || !(f.stored(f.root.ID).Admin || f.stored(second.ID).Admin) {
		t.Errorf("%d of two demotions refused; admins left: root %v, second %v", refused, f.stored(f.root.ID).Admin, f.stored(second.ID).Admin)
	}
}

func TestAdminReadOnlyAndNonAdminActors(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.signInEverywhere(u)
	plain := f.user("plain", false)
	before := userJSON(t, f.stored(u.ID))
	readOnly := f.actor
	readOnly.ReadOnly = true
	readOnlyApp := account.Actor{Kind: account.ActorClient, ClientID: "ops", ReadOnly: true}
	notAdmin := account.Actor{Kind: account.ActorUser, UserID: plain.ID}
	gone := account.Actor{Kind: account.ActorUser, UserID: "deleted-admin"}
	writes := map[string]func(a account.Actor) error{
		"UpdateUser": func(a account.Actor) error {
			_, _, err := f.svc.Admin.UpdateUser(f.ctx, a, u.ID, "", account.UserPatch{Admin: ptr(true)})
			return err
		},
		"BlockUser":   func(a account.Actor) error { _, err := f.svc.Admin.BlockUser(f.ctx, a, u.ID); return err },
		"UnblockUser": func(a account.Actor) error { return f.svc.Admin.UnblockUser(f.ctx, a, u.ID) },
		"ResetSecondFactors": func(a account.Actor) error {
			_, err := f.svc.Admin.ResetSecondFactors(f.ctx, a, u.ID)
			return err
		},
		"EndSessions": func(a account.Actor) error { _, err := f.svc.Admin.EndSessions(f.ctx, a, u.ID); return err },
		"DeleteUser":  func(a account.Actor) error { return f.svc.Admin.DeleteUser(f.ctx, a, u.ID) },
		"CreateUser": func(a account.Actor) error {
			_, _, err := f.svc.Admin.CreateUser(f.ctx, a, account.AdminNewUser{Username: "new", Email: "new@example.com", Invite: true})
			return err
		},
		"PasswordResetLink": func(a account.Actor) error { _, err := f.svc.Admin.PasswordResetLink(f.ctx, a, u.ID); return err },
	}
	for name, call := range writes {
		for aname, a := range map[string]account.Actor{"read-only admin": readOnly, "read-only app": readOnlyApp, "non-admin": notAdmin, "deleted admin": gone} {
			if err := call(a); account.ErrorCode(err) != account.Forbidden {
				t.Errorf("%s by %s: %v, want forbidden", name, aname, err)
			}
		}
	}
	if userJSON(t, f.stored(u.ID)) != before {
		t.Error("a refused actor changed the user")
	}
	if left, _ := f.db.ListUserSessions(f.ctx, u.ID); len(left) != 2 {
		t.Error("a refused actor ended sessions")
	}
	if _, err := f.db.GetUserByLogin(f.ctx, "new"); err == nil {
		t.Error("a refused actor created a user")
	}
	if evs := f.events(u.ID); len(evs) != 0 {
		t.Errorf("refusals wrote events: %+v", evs)
	}
	// Reading is fine for read-only credentials, not for non-admins.
	if _, err := f.svc.Admin.User(f.ctx, readOnly, u.ID); err != nil {
		t.Errorf("read-only admin reading: %v", err)
	}
	if _, err := f.svc.Admin.User(f.ctx, readOnlyApp, u.ID); err != nil {
		t.Errorf("read-only app reading: %v", err)
	}
	if _, err := f.svc.Admin.User(f.ctx, notAdmin, u.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("non-admin reading: %v", err)
	}
	// A blocked admin cannot act either.
	other := f.user("other-admin", true)
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.User(f.ctx, account.Actor{Kind: account.ActorUser, UserID: other.ID}, u.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("blocked admin reading: %v", err)
	}
}

func TestAdminNeverTheLastAdmin(t *testing.T) {
	f := newAdminFixture(t)
	cli := account.Actor{Kind: account.ActorCLI}
	before := userJSON(t, f.stored(f.root.ID))
	// root is the only administrator: the command line may not demote,
	// block or delete them.
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, cli, f.root.ID, "", account.UserPatch{Admin: ptr(false)}); account.ErrorCode(err) != account.Conflict || account.ErrorField(err) != "admin" {
		t.Errorf("demote the last admin: %v", err)
	}
	if _, err := f.svc.Admin.BlockUser(f.ctx, cli, f.root.ID); account.ErrorCode(err) != account.Conflict {
		t.Errorf("block the last admin: %v", err)
	}
	if err := f.svc.Admin.DeleteUser(f.ctx, cli, f.root.ID); account.ErrorCode(err) != account.Conflict {
		t.Errorf("delete the last admin: %v", err)
	}
	// An admin may not delete or block themselves, whoever else there is.
	second := f.user("second", true)
	if err := f.svc.Admin.DeleteUser(f.ctx, f.actor, f.root.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("self-delete: %v", err)
	}
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, f.root.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("self-block: %v", err)
	}
	if userJSON(t, f.stored(f.root.ID)) != before || len(f.events(f.root.ID)) != 0 {
		t.Fatal("a refusal changed the last admin or wrote an event")
	}
	// A blocked admin is no admin who can act: with second blocked, root
	// is the last one again.
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, second.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, cli, f.root.ID, "", account.UserPatch{Admin: ptr(false)}); account.ErrorCode(err) != account.Conflict {
		t.Errorf("demote the last active admin: %v", err)
	}
	// With two, one may go; then the other is the last.
	if err := f.svc.Admin.UnblockUser(f.ctx, f.actor, second.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, f.root.ID, "", account.UserPatch{Admin: ptr(false)}); err != nil {
		t.Fatalf("self-demote with another admin: %v", err)
	}
	if f.stored(f.root.ID).Admin {
		t.Fatal("not demoted")
	}
	for name, err := range map[string]error{
		"demote": func() error {
			_, _, err := f.svc.Admin.UpdateUser(f.ctx, cli, second.ID, "", account.UserPatch{Admin: ptr(false)})
			return err
		}(),
		"block":  func() error { _, err := f.svc.Admin.BlockUser(f.ctx, cli, second.ID); return err }(),
		"delete": f.svc.Admin.DeleteUser(f.ctx, cli, second.ID),
	} {
		if account.ErrorCode(err) != account.Conflict {
			t.Errorf("%s the new last admin: %v", name, err)
		}
	}
	if s := f.stored(second.ID); !s.Admin || s.Blocked {
		t.Error("the last admin was changed")
	}
}

func TestAdminLockedDirectoryFields(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("dora", false)
	if _, err := f.db.UpdateUser(f.ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.Source = "corp-ldap"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.Admin.User(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"username", "email", "email_verified", "name", "given_name", "family_name", "nickname", "phone_number", "phone_verified", "groups"} {
		if !strings.Contains(d.Locked[key], "corp-ldap") {
			t.Errorf("%s not locked with the reason: %q", key, d.Locked[key])
		}
	}
	for _, key := range []string{"admin", "roles", "locale", "zoneinfo", "app_metadata"} {
		if r, ok := d.Locked[key]; ok {
			t.Errorf("%s locked: %q", key, r)
		}
	}
	before := userJSON(t, f.stored(u.ID))
	for name, p := range map[string]account.UserPatch{
		"username":       {Username: ptr("dora2")},
		"email":          {Email: ptr("dora@elsewhere.example")},
		"email_verified": {EmailVerified: ptr(true)},
		"given_name":     {GivenName: ptr("Dora")},
		"groups":         {Groups: &[]string{"admins"}},
		"phone_number":   {PhoneNumber: ptr("+4915123456789")},
	} {
		_, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", p)
		if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != name || !strings.Contains(account.ErrorMessage(err), "corp-ldap") {
			t.Errorf("%s: %v (field %q)", name, err, account.ErrorField(err))
		}
	}
	if userJSON(t, f.stored(u.ID)) != before {
		t.Fatal("a locked field changed")
	}
	// A form that posts the locked value as it is, with fields the admin
	// owns, goes through.
	got, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{Username: ptr("dora"), Email: ptr(u.Email), Roles: &[]string{"ops"}, Locale: ptr("de")})
	if err != nil || !slices.Equal(got.Roles, []string{"ops"}) || got.Locale != "de" {
		t.Errorf("unlocked fields beside unchanged locked ones: %v %+v", err, got)
	}
	// Its password is the directory's.
	if _, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, u.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("reset link for a directory user: %v", err)
	}
}

func TestAdminBlockEndsEverything(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	bystander := f.user("bob", false)
	f.signInEverywhere(u)
	f.signInEverywhere(bystander)
	apiToken := f.enrolFactors(u)

	out, err := f.svc.Admin.BlockUser(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Sessions != 2 || out.Tokens < 2 {
		t.Errorf("block reported %+v, want 2 sessions and the access and refresh token", out)
	}
	f.signedOut(u)
	if !f.stored(u.ID).Blocked {
		t.Fatal("not blocked")
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err == nil {
		t.Error("a blocked user signed in")
	}
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, apiToken, "", ""); err == nil {
		t.Error("a blocked user's API token works")
	}
	if left, _ := f.db.ListUserSessions(f.ctx, bystander.ID); len(left) != 2 {
		t.Error("blocking alice ended bob's sessions")
	}
	e := f.lastEvent(u.ID, "user.blocked")
	if len(e.Changes) != 1 || e.Changes[0] != (storage.AuditChange{Field: "blocked", Before: "false", After: "true"}) || !strings.Contains(e.Reason, "2 sessions") {
		t.Errorf("event %+v", e)
	}
	// Again: nothing more to record.
	f.clock.Add(time.Second)
	n := len(f.events(u.ID))
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, u.ID); err != nil || len(f.events(u.ID)) != n {
		t.Errorf("blocking again: %v, %d new events", err, len(f.events(u.ID))-n)
	}
	if err := f.svc.Admin.UnblockUser(f.ctx, f.actor, u.ID); err != nil {
		t.Fatal(err)
	}
	f.lastEvent(u.ID, "user.unblocked")
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err != nil {
		t.Errorf("unblocked sign-in: %v", err)
	}
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, apiToken, "", ""); err != nil {
		t.Errorf("the API token after unblocking: %v", err)
	}
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, "nobody"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("block nobody: %v", err)
	}
}

func TestAdminResetSecondFactors(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	apiToken := f.enrolFactors(u)
	f.signInEverywhere(u)
	if _, err := f.db.UpdateUser(f.ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.TOTPPending = []byte("sealed-pending")
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Admin.ResetSecondFactors(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := (account.FactorsRemoved{TOTP: true, Passkeys: 2, RecoveryCodes: 3, TrustedDevices: 1}); got != want {
		t.Errorf("removed %+v, want %+v", got, want)
	}
	s := f.stored(u.ID)
	if s.TOTPSecret != nil || s.TOTPPending != nil || s.TOTPLastStep != 0 || s.RecoveryCodes != nil {
		t.Errorf("TOTP or recovery codes left: %+v", s)
	}
	for _, kind := range []string{storage.KindPasskey, storage.KindTrustedDevice} {
		if left, _ := f.db.ListCredentials(f.ctx, u.ID, kind); len(left) != 0 {
			t.Errorf("%d %s left", len(left), kind)
		}
	}
	if has, _ := f.svc.Credentials.HasSecondFactor(f.ctx, s); has {
		t.Error("still has a second factor")
	}
	// Not second factors: the API token, the password, the sessions.
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, apiToken, "", ""); err != nil {
		t.Errorf("API token: %v", err)
	}
	if left, _ := f.db.ListUserSessions(f.ctx, u.ID); len(left) != 2 || s.PasswordHash != u.PasswordHash {
		t.Error("the reset ended sessions or changed the password")
	}
	e := f.lastEvent(u.ID, "user.second_factors_reset")
	want := []storage.AuditChange{{Field: "totp", Before: "true", After: "false"}, {Field: "passkeys", Before: "2", After: "0"},
		{Field: "recovery_codes", Before: "3", After: "0"}, {Field: "trusted_devices", Before: "1", After: "0"}}
	if !reflect.DeepEqual(e.Changes, want) {
		t.Errorf("changes %+v", e.Changes)
	}
	// Nothing left: nothing removed, nothing recorded.
	n := len(f.events(u.ID))
	if got, err := f.svc.Admin.ResetSecondFactors(f.ctx, f.actor, u.ID); err != nil || got != (account.FactorsRemoved{}) || len(f.events(u.ID)) != n {
		t.Errorf("second reset: %+v %v", got, err)
	}
}

func TestAdminEndSessions(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.signInEverywhere(u)
	apiToken := f.enrolFactors(u)
	out, err := f.svc.Admin.EndSessions(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Sessions != 2 || out.Tokens < 2 {
		t.Errorf("ended %+v", out)
	}
	f.signedOut(u)
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, apiToken, "", ""); err != nil {
		t.Errorf("API token after ending sessions: %v", err)
	}
	if s := f.stored(u.ID); s.Blocked || s.TOTPSecret == nil {
		t.Error("ending sessions blocked the user or removed a factor")
	}
	if e := f.lastEvent(u.ID, "user.sessions_ended"); !strings.Contains(e.Reason, "2 sessions") {
		t.Errorf("event %+v", e)
	}
}

func TestAdminDeleteUser(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", true) // another admin: root may delete them
	f.signInEverywhere(u)
	f.enrolFactors(u)
	if err := f.svc.Admin.DeleteUser(f.ctx, f.actor, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.GetUser(f.ctx, u.ID); err == nil {
		t.Fatal("still there")
	}
	f.signedOut(u)
	if left, _ := f.db.ListCredentials(f.ctx, u.ID, ""); len(left) != 0 {
		t.Errorf("%d credentials left", len(left))
	}
	e := f.lastEvent(u.ID, "user.deleted")
	want := []storage.AuditChange{{Field: "username", Before: "alice"}, {Field: "email", Before: "alice@example.com"}}
	if !reflect.DeepEqual(e.Changes, want) || e.ActorID != f.root.ID {
		t.Errorf("event %+v", e)
	}
	if err := f.svc.Admin.DeleteUser(f.ctx, f.actor, u.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("delete again: %v", err)
	}
}

func TestAdminCreateUser(t *testing.T) {
	f := newAdminFixture(t)
	u, link, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: " carol ", Email: "carol@example.com", Name: "Carol",
		EmailVerified: true, Roles: []string{"ops"}, Groups: []string{"staff"}, Password: "a fine long password"})
	if err != nil {
		t.Fatal(err)
	}
	if link != (account.Link{}) || u.Username != "carol" || !u.EmailVerified || u.PasswordChangedAt.IsZero() {
		t.Errorf("created %+v, link %+v", u, link)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "carol", Password: "a fine long password"}); err != nil {
		t.Errorf("sign-in: %v", err)
	}
	e := f.lastEvent(u.ID, "user.created")
	if e.Reason != "password" || e.ActorID != f.root.ID {
		t.Errorf("event %+v", e)
	}

	users, _ := f.db.ListUsers(f.ctx)
	for name, c := range map[string]struct {
		n     account.AdminNewUser
		code  account.Code
		field string
	}{
		"username":          {account.AdminNewUser{Username: "a b", Email: "x@example.com", Invite: true}, account.Invalid, "username"},
		"username taken":    {account.AdminNewUser{Username: "Carol", Email: "x@example.com", Invite: true}, account.Conflict, "username"},
		"email":             {account.AdminNewUser{Username: "x", Email: "x@", Invite: true}, account.Invalid, "email"},
		"email taken":       {account.AdminNewUser{Username: "x", Email: "CAROL@example.com", Invite: true}, account.Conflict, "email"},
		"name":              {account.AdminNewUser{Username: "x", Email: "x@example.com", Name: strings.Repeat("n", 201), Invite: true}, account.Invalid, "name"},
		"roles":             {account.AdminNewUser{Username: "x", Email: "x@example.com", Roles: []string{"a,b"}, Invite: true}, account.Invalid, "roles"},
		"groups":            {account.AdminNewUser{Username: "x", Email: "x@example.com", Groups: []string{"\x01"}, Invite: true}, account.Invalid, "groups"},
		"neither":           {account.AdminNewUser{Username: "x", Email: "x@example.com"}, account.Invalid, "password"},
		"both":              {account.AdminNewUser{Username: "x", Email: "x@example.com", Password: "a fine long password", Invite: true}, account.Invalid, "password"},
		"short password":    {account.AdminNewUser{Username: "x", Email: "x@example.com", Password: "short"}, account.Invalid, "password"},
		"username password": {account.AdminNewUser{Username: "xavier-long", Email: "x@example.com", Password: "XAVIER-LONG"}, account.Invalid, "password"},
	} {
		_, _, err := f.svc.Admin.CreateUser(f.ctx, f.actor, c.n)
		if account.ErrorCode(err) != c.code || account.ErrorField(err) != c.field {
			t.Errorf("%s: %v (code %s, field %q)", name, err, account.ErrorCode(err), account.ErrorField(err))
		}
	}
	if after, _ := f.db.ListUsers(f.ctx); len(after) != len(users) {
		t.Errorf("refused creations stored %d users", len(after)-len(users))
	}
}

func TestAdminInvitation(t *testing.T) {
	f := newAdminFixture(t)
	u, link, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "dave", Email: "dave@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	if u.PasswordHash != "" || link.Secret == "" || link.URL != "https://id.example/invite?token="+link.Secret || !link.ExpiresAt.Equal(f.clock.Now().Add(7*24*time.Hour)) {
		t.Fatalf("user %+v, link %+v", u, link)
	}
	if e := f.lastEvent(u.ID, "user.created"); e.Reason != "invitation" {
		t.Errorf("event %+v", e)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "dave", Password: ""}); err == nil {
		t.Fatal("an invited user signed in without a password")
	}
	if got, err := f.svc.Admin.CheckInvitation(f.ctx, link.Secret, "192.0.2.3"); err != nil || got.ID != u.ID {
		t.Fatalf("check: %v", err)
	}
	// A reset link is no invitation, and an invitation no reset link.
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, link.Secret, "192.0.2.3"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("invitation as reset link: %v", err)
	}
	// A bad password does not spend the link.
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, link.Secret, "short", "192.0.2.3", "ua"); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "password" {
		t.Errorf("short password: %v", err)
	}
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, link.Secret, "dave@example.com", "192.0.2.3", "ua"); account.ErrorField(err) != "password" {
		t.Errorf("email as password: %v", err)
	}
	if f.stored(u.ID).PasswordHash != "" {
		t.Fatal("a refused password was set")
	}
	got, err := f.svc.Admin.RedeemInvitation(f.ctx, link.Secret, "dave's own password", "192.0.2.3", "Firefox")
	if err != nil || got.ID != u.ID {
		t.Fatalf("redeem: %v", err)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "dave", Password: "dave's own password"}); err != nil {
		t.Errorf("sign-in with the chosen password: %v", err)
	}
	e := f.lastEvent(u.ID, "user.invitation_accepted")
	if e.ActorKind != account.ActorUser || e.ActorID != u.ID || e.IP != "192.0.2.3" || e.UserAgent != "Firefox" {
		t.Errorf("event %+v", e)
	}
	// Spent.
	hash := f.stored(u.ID).PasswordHash
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, link.Secret, "another password 1", "192.0.2.3", ""); account.ErrorCode(err) != account.NotFound {
		t.Errorf("second use: %v", err)
	}
	if f.stored(u.ID).PasswordHash != hash {
		t.Error("a spent link changed the password")
	}

	// An invitation expires after a week.
	_, late, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "erin", Email: "erin@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(7*24*time.Hour + time.Second)
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, late.Secret, "erin's own password", "192.0.2.4", ""); account.ErrorCode(err) != account.NotFound {
		t.Errorf("expired invitation: %v", err)
	}
	if erin, _ := f.db.GetUserByLogin(f.ctx, "erin"); erin.PasswordHash != "" {
		t.Error("an expired invitation set a password")
	}
}

func TestAdminPasswordResetLink(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.signInEverywhere(u)
	link, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if link.URL != "https://id.example/reset-password?token="+link.Secret || !link.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Errorf("link %+v", link)
	}
	if e := f.lastEvent(u.ID, "user.password_reset_link_created"); e.ActorID != f.root.ID {
		t.Errorf("event %+v", e)
	}
	// Until it is used, nothing changes: the old password works.
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, link.Secret, "a brand new password", "192.0.2.5", "Safari"); err != nil {
		t.Fatal(err)
	}
	f.signedOut(u)
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err == nil {
		t.Error("the old password still works")
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: "a brand new password"}); err != nil {
		t.Errorf("new password: %v", err)
	}
	if e := f.lastEvent(u.ID, "user.password_reset"); e.ActorID != u.ID || !strings.Contains(e.Reason, "sessions ended") {
		t.Errorf("event %+v", e)
	}
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, link.Secret, "yet another password", "192.0.2.5", ""); account.ErrorCode(err) != account.NotFound {
		t.Errorf("second use: %v", err)
	}
	// Valid for an hour.
	old, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour + time.Second)
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, old.Secret, "192.0.2.5"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("expired link: %v", err)
	}
}

func TestAdminLinkGuessesAreThrottled(t *testing.T) {
	f := newAdminFixture(t) // 5 failures per address and window
	link, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, f.user("alice", false).ID)
	if err != nil {
		t.Fatal(err)
	}
	guesses := []string{"", "garbage", link.Secret[:len(link.Secret)-1] + "x", strings.Repeat("A", len(link.Secret)), link.Secret + "x"}
	for _, g := range guesses {
		if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, g, "198.51.100.1"); account.ErrorCode(err) != account.NotFound {
			t.Errorf("guess %q: %v", g, err)
		}
	}
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, "one more guess", "a brand new password", "198.51.100.1", ""); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("after %d guesses: %v, want rate limited", len(guesses), err)
	}
	// Another address is not held back, and a real link from it works.
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, link.Secret, "198.51.100.2"); err != nil {
		t.Errorf("real link from another address: %v", err)
	}
}

// TestAdminAuditHoldsNoSecrets runs every action and looks for every
// secret involved in the stored audit log.
func TestAdminAuditHoldsNoSecrets(t *testing.T) {
	f := newAdminFixture(t)
	u, invite, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "gina", Email: "gina@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second) // one event a second: the log's order is the actions'
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, invite.Secret, "gina's first password", "", ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second)
	reset, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second) // one event a second: the log's order is the actions'
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, reset.Secret, "gina's second password", "", ""); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second)
	pw, _, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "hank", Email: "hank@example.com", Password: "hank's password here"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second) // one event a second: the log's order is the actions'
	apiToken := f.enrolFactors(u)
	f.clock.Add(time.Second)
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{AppMetadata: &map[string]string{"plan": "pro"}, Admin: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second)
	if _, err := f.svc.Admin.ResetSecondFactors(f.ctx, f.actor, u.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second)
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, u.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Second)
	stored := f.stored(u.ID)
	if err := f.svc.Admin.DeleteUser(f.ctx, f.actor, u.ID); err != nil {
		t.Fatal(err)
	}
	all, _, err := f.db.ListAudit(f.ctx, storage.AuditQuery{Limit: storage.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(all)
	for name, secret := range map[string]string{
		"invitation": invite.Secret, "invitation hash": account.HashSecret(invite.Secret), "reset link": reset.Secret,
		"reset hash": account.HashSecret(reset.Secret), "password": "gina's second password", "first password": "gina's first password",
		"created password": "hank's password here", "password hash": stored.PasswordHash, "created hash": f.stored(pw.ID).PasswordHash,
		"API token": apiToken, "argon2": "$argon2id$",
	} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds the %s", name)
		}
	}
	var types []string
	for _, e := range slices.Backward(all) {
		if e.TargetUserID == u.ID {
			types = append(types, e.Type)
		}
	}
	want := []string{"user.created", "user.invitation_accepted", "user.password_reset_link_created", "user.password_reset", "api_token.created", "user.updated", "user.second_factors_reset", "user.blocked", "user.deleted"}
	if !slices.Equal(types, want) {
		t.Errorf("events\n%v\nwant\n%v", types, want)
	}
}

// TestAdminAuditEventFitsTheLog makes the largest edit the rules allow
// and checks that its event is stored (the store refuses events over
// storage.MaxAuditEventBytes).
func TestAdminAuditEventFitsTheLog(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	meta := func(fill string) map[string]string {
		m := map[string]string{}
		for i := range 8 {
			m["key"+string(rune('a'+i))] = strings.Repeat(fill, 1000/len(fill)) // "<" is 6 bytes in JSON
		}
		return m
	}
	name := strings.Repeat("<", 200)
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{AppMetadata: ptr(meta("<")), Name: &name, GivenName: &name, FamilyName: &name, Nickname: &name}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{AppMetadata: ptr(meta(">")), Name: ptr(strings.Repeat(">", 200))}); err != nil {
		t.Fatal(err)
	}
	var updates []storage.AuditEvent
	for _, e := range f.events(u.ID) {
		if e.Type == "user.updated" {
			updates = append(updates, e)
		}
	}
	if len(updates) != 2 {
		t.Fatalf("%d update events stored, want 2", len(updates))
	}
	last := updates[1]
	fields := map[string]bool{}
	for _, c := range last.Changes {
		fields[c.Field] = true
	}
	if !fields["name"] || !fields["app_metadata.keya"] || !fields["app_metadata.keyh"] {
		t.Errorf("the fitted event lost a field's name: %+v", last.Changes)
	}
}

func TestParseAppMetadata(t *testing.T) {
	for raw, want := range map[string]map[string]string{
		"":                                {},
		"  {}  ":                          {},
		`{"plan":"pro","tenant.id":"42"}`: {"plan": "pro", "tenant.id": "42"},
	} {
		got, err := account.ParseAppMetadata(raw)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v %v", raw, got, err)
		}
	}
	for _, raw := range []string{`[]`, `null`, `{"n":1}`, `{"a":{"b":"c"}}`, `{"bad key":"v"}`, `{"a":"b"`, `"text"`, `{"k":"` + strings.Repeat("v", 20<<10) + `"}`} {
		if _, err := account.ParseAppMetadata(raw); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "app_metadata" {
			t.Errorf("%.40q: %v", raw, err)
		}
	}
}
