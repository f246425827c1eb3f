package account_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/webauthntest"
	"github.com/keyport/keyport/storage"
)

// The passkey rules are tested against a software authenticator: a real
// P-256 key that builds the same WebAuthn answers a browser would send
// (attestation "none"), so every check of go-webauthn and of ours runs.

type passkeyFixture struct {
	t     *testing.T
	ctx   context.Context
	svc   *account.Service
	db    storage.Store
	clock *testclock.Clock
	alice storage.User
}

func newPasskeyFixture(t *testing.T, issuer string) *passkeyFixture {
	t.Helper()
	clock := testclock.At(time.Now().UTC().Truncate(time.Second))
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: clock.Now, Log: slog.New(slog.DiscardHandler), Policy: account.Policy{
		MaxLoginAttempts: 5, LoginWindow: time.Minute, SessionLifetime: time.Hour,
		Issuer: issuer, RecentAuth: 5 * time.Minute,
	}})
	f := &passkeyFixture{t: t, ctx: context.Background(), svc: svc, db: db, clock: clock}
	f.alice = f.user("alice")
	return f
}

func (f *passkeyFixture) user(name string) storage.User {
	f.t.Helper()
	u, err := f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: name, Email: name + "@example.com", Name: name + " Example", Password: "correct horse battery"})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

// softKey is the shared software authenticator.
type softKey = webauthntest.Authenticator

func newSoftKey(t *testing.T, origin string) *softKey { return webauthntest.New(t, origin) }

var parseOptions = webauthntest.ParseOptions

var b64 = base64.RawURLEncoding

// enrol registers k for u under name and returns the stored passkey.
func (f *passkeyFixture) enrol(u storage.User, k *softKey, name string) storage.Credential {
	f.t.Helper()
	opts, id, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, u, name)
	if err != nil {
		f.t.Fatalf("begin registration: %v", err)
	}
	c, err := f.svc.Credentials.FinishPasskeyRegistration(f.ctx, u, id, k.Register(opts))
	if err != nil {
		f.t.Fatalf("finish registration: %v", err)
	}
	return c
}

// login runs a username-less sign-in with k from ip.
func (f *passkeyFixture) login(k *softKey, ip string) (storage.User, []string, error) {
	f.t.Helper()
	opts, id, err := f.svc.Credentials.BeginPasskeyLogin(f.ctx)
	if err != nil {
		f.t.Fatalf("begin sign-in: %v", err)
	}
	return f.svc.Credentials.FinishPasskeyLogin(f.ctx, id, k.Assert(opts), ip, "test-agent")
}

func (f *passkeyFixture) passkeys(u storage.User) []storage.Credential {
	f.t.Helper()
	cs, err := f.db.ListCredentials(f.ctx, u.ID, storage.KindPasskey)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

func (f *passkeyFixture) lastAttempt(u storage.User) storage.LoginAttempt {
	f.t.Helper()
	as, err := f.db.ListLoginAttempts(f.ctx, u.ID, 1)
	if err != nil || len(as) == 0 {
		f.t.Fatalf("no sign-in attempt recorded for %s (%v)", u.Username, err)
	}
	return as[0]
}

func wantCode(t *testing.T, what string, err error, code account.Code) {
	t.Helper()
	if err == nil || account.ErrorCode(err) != code {
		t.Fatalf("%s: got %v (%s), want %s", what, err, account.ErrorCode(err), code)
	}
}

const testIssuer = "https://id.example.com:8443/keyport"

func TestPasskeyRelyingPartyFromIssuer(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	if !f.svc.Credentials.PasskeysAvailable() {
		t.Fatal("passkeys unavailable for a domain issuer")
	}
	opts, _, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
	if err != nil {
		t.Fatal(err)
	}
	if rp := parseOptions(t, opts).PublicKey.RP.ID; rp != "id.example.com" {
		t.Errorf("RP ID = %q, want the issuer's host without port or path", rp)
	}
	// The origin is the issuer's scheme, host and port: nothing else.
	for _, bad := range []struct{ origin, rpID string }{
		{"https://id.example.com", ""},                 // port missing
		{"http://id.example.com:8443", ""},             // scheme
		{"https://evil.example:8443", ""},              // another site
		{"https://id.example.com:8443", "example.com"}, // signed for another RP ID
	} {
		k := newSoftKey(t, bad.origin)
		k.RPID = bad.rpID
		opts, id, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Credentials.FinishPasskeyRegistration(f.ctx, f.alice, id, k.Register(opts))
		wantCode(t, "registration from "+bad.origin+" for RP "+bad.rpID, err, account.Invalid)
	}
	if n := len(f.passkeys(f.alice)); n != 0 {
		t.Fatalf("%d passkeys stored from wrong origins", n)
	}
	f.enrol(f.alice, newSoftKey(t, "https://id.example.com:8443"), "")

	// Browsers refuse an IP address as relying party: no passkeys then.
	for _, issuer := range []string{"http://127.0.0.1:8080", "http://[::1]:8080", "not a url"} {
		g := newPasskeyFixture(t, issuer)
		if g.svc.Credentials.PasskeysAvailable() {
			t.Errorf("%s: passkeys available", issuer)
		}
		_, _, err := g.svc.Credentials.BeginPasskeyLogin(g.ctx)
		wantCode(t, issuer+": begin", err, account.Unavailable)
	}
}

func TestPasskeyRegistration(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	origin := "https://id.example.com:8443"
	opts, _, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
	if err != nil {
		t.Fatal(err)
	}
	o := parseOptions(t, opts).PublicKey
	if o.AuthenticatorSelection.ResidentKey != "required" || o.AuthenticatorSelection.UserVerification != "preferred" {
		t.Errorf("authenticator selection: %+v", o.AuthenticatorSelection)
	}
	if o.User.ID != b64.EncodeToString([]byte(f.alice.ID)) || o.User.Name != "alice" || o.User.DisplayName == "" {
		t.Errorf("user entity: %+v (the handle must be the user ID)", o.User)
	}

	laptop := newSoftKey(t, origin)
	c := f.enrol(f.alice, laptop, "  Laptop ")
	if c.Name != "Laptop" || c.Kind != storage.KindPasskey || !bytes.Equal(c.WebAuthnID, laptop.ID) || len(c.WebAuthn) == 0 || c.CreatedAt.IsZero() {
		t.Fatalf("stored passkey: %+v", c)
	}
	// Default names count up and skip taken ones.
	second := f.enrol(f.alice, newSoftKey(t, origin), "")
	if second.Name != "Passkey 2" {
		t.Errorf("default name %q", second.Name)
	}
	if err := f.svc.Credentials.RenamePasskey(f.ctx, f.alice, second.ID, "Passkey 3"); err != nil {
		t.Fatal(err)
	}
	if c := f.enrol(f.alice, newSoftKey(t, origin), ""); c.Name != "Passkey 4" {
		t.Errorf("default name next to a taken one: %q", c.Name)
	}

	// The user's passkeys are excluded, so an authenticator is not
	// registered twice; the store refuses a repeat all the same.
	opts, id, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "Again")
	if err != nil {
		t.Fatal(err)
	}
	if ex := parseOptions(t, opts).PublicKey.ExcludeCredentials; len(ex) != 3 || !slices.ContainsFunc(ex, func(e struct {
		ID string `json:"id"`
	}) bool {
		return e.ID == b64.EncodeToString(laptop.ID)
	}) {
		t.Errorf("exclusion list: %+v", ex)
	}
	_, err = f.svc.Credentials.FinishPasskeyRegistration(f.ctx, f.alice, id, laptop.Register(opts))
	wantCode(t, "the same authenticator again", err, account.Conflict)

	// Names are checked before the authenticator is asked.
	for name, code := range map[string]account.Code{
		"laptop":                account.Conflict, // case-insensitive
		strings.Repeat("x", 65): account.Invalid,
		"line\nbreak":           account.Invalid,
		"tab\there":             account.Invalid,
	} {
		_, _, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, name)
		wantCode(t, "name "+name, err, code)
		if account.ErrorField(err) != "name" {
			t.Errorf("name %q: field %q", name, account.ErrorField(err))
		}
	}
	if _, _, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, strings.Repeat("ü", 64)); err != nil {
		t.Errorf("64 characters refused: %v", err)
	}
	// Another user may use the same name.
	bob := f.user("bob")
	if c := f.enrol(bob, newSoftKey(t, origin), "Laptop"); c.Name != "Laptop" {
		t.Errorf("bob's passkey: %+v", c)
	}

	// Garbage and oversized answers are refused; nothing is stored.
	before := len(f.passkeys(f.alice))
	for what, body := range map[string][]byte{
		"garbage":   []byte(`{"id":"AAAA"}`),
		"not JSON":  []byte(`<html>`),
		"oversized": bytes.Repeat([]byte("a"), account.MaxPasskeyAnswerBytes+1),
	} {
		_, id, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Credentials.FinishPasskeyRegistration(f.ctx, f.alice, id, body)
		wantCode(t, what, err, account.Invalid)
	}
	if after := len(f.passkeys(f.alice)); after != before {
		t.Errorf("refused answers stored passkeys: %d → %d", before, after)
	}
}

func TestPasskeyCeremonyOnceAndExpiring(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	origin := "https://id.example.com:8443"
	k := newSoftKey(t, origin)

	// Answered once only.
	opts, id, err := f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "One")
	if err != nil {
		t.Fatal(err)
	}
	body := k.Register(opts)
	if _, err := f.svc.Credentials.FinishPasskeyRegistration(f.ctx, f.alice, id, body); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Credentials.FinishPasskeyRegistration(f.ctx, f.alice, id, newSoftKey(t, origin).Register(opts))
	wantCode(t, "second answer to one challenge", err, account.Invalid)

	// A ceremony belongs to the user it was begun for.
	bob := f.user("bob")
	opts, id, _ = f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
	_, err = f.svc.Credentials.FinishPasskeyRegistration(f.ctx, bob, id, newSoftKey(t, origin).Register(opts))
	wantCode(t, "alice's ceremony finished by bob", err, account.Invalid)

	// Purposes do not mix: a registration ceremony is no sign-in challenge.
	opts, id, _ = f.svc.Credentials.BeginPasskeyRegistration(f.ctx, f.alice, "")
	_, _, err = f.svc.Credentials.FinishPasskeyLogin(f.ctx, id, k.Assert(opts), "192.0.2.1", "ua")
	wantCode(t, "registration ceremony used to sign in", err, account.Invalid)
	_, _, err = f.svc.Credentials.FinishPasskeyLogin(f.ctx, "", k.Assert(opts), "192.0.2.1", "ua")
	wantCode(t, "no ceremony", err, account.Invalid)

	// Five minutes to answer.
	opts, id, _ = f.svc.Credentials.BeginPasskeyLogin(f.ctx)
	f.clock.Add(5*time.Minute + time.Second)
	_, _, err = f.svc.Credentials.FinishPasskeyLogin(f.ctx, id, k.Assert(opts), "192.0.2.1", "ua")
	wantCode(t, "expired sign-in ceremony", err, account.Invalid)
	opts, id, _ = f.svc.Credentials.BeginPasskeyLogin(f.ctx)
	f.clock.Add(4 * time.Minute)
	if _, _, err := f.svc.Credentials.FinishPasskeyLogin(f.ctx, id, k.Assert(opts), "192.0.2.1", "ua"); err != nil {
		t.Fatalf("answer within the lifetime: %v", err)
	}
}

func TestPasskeyLogin(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	origin := "https://id.example.com:8443"
	k := newSoftKey(t, origin)
	pk := f.enrol(f.alice, k, "Laptop")

	opts, _, err := f.svc.Credentials.BeginPasskeyLogin(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if o := parseOptions(t, opts).PublicKey; len(o.AllowCredentials) != 0 || o.RPID != "id.example.com" || o.UserVerification != "preferred" {
		t.Errorf("username-less options: %+v", o)
	}

	f.clock.Add(time.Minute)
	u, amr, err := f.login(k, "192.0.2.7")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != f.alice.ID || !slices.Equal(amr, []string{"hwk", "mfa"}) {
		t.Fatalf("signed in %s with amr %v", u.Username, amr)
	}
	stored, _ := f.db.GetCredential(f.ctx, f.alice.ID, pk.ID)
	if !stored.LastUsedAt.Equal(f.clock.Now()) || stored.LastIP != "192.0.2.7" || bytes.Equal(stored.WebAuthn, pk.WebAuthn) {
		t.Errorf("passkey not updated after use: last used %v from %q", stored.LastUsedAt, stored.LastIP)
	}

	// Without user verification it is one factor only.
	k.UV = false
	if _, amr, err := f.login(k, "192.0.2.7"); err != nil || !slices.Equal(amr, []string{"hwk"}) {
		t.Errorf("without UV: %v %v", amr, err)
	}
	k.UV = true

	// A synced (backup eligible) passkey is a software-secured key.
	synced := newSoftKey(t, origin)
	synced.Backup = true
	f.enrol(f.alice, synced, "Phone")
	if _, amr, err := f.login(synced, "192.0.2.7"); err != nil || !slices.Equal(amr, []string{"swk", "mfa"}) {
		t.Errorf("synced passkey: %v %v", amr, err)
	}

	refused := func(what, reason string, key *softKey, ip string, code account.Code) {
		t.Helper()
		f.clock.Add(time.Second) // so this attempt is the newest
		_, _, err := f.login(key, ip)
		wantCode(t, what, err, code)
		if a := f.lastAttempt(f.alice); a.Success || a.Method != "passkey" || a.Reason != reason || a.IP != ip {
			t.Errorf("%s: recorded %+v, want reason %q", what, a, reason)
		}
	}

	// A counter that goes backwards means a cloned key.
	clone := *k
	clone.Counter = 0
	refused("cloned key", "passkey signature counter went backwards (possible clone)", &clone, "192.0.2.8", account.Unauthorized)

	// A signature by another key for the same credential ID.
	forged := newSoftKey(t, origin)
	forged.ID, forged.UserHandle, forged.Counter = k.ID, k.UserHandle, 100
	refused("forged signature", "passkey not verified", forged, "192.0.2.9", account.Unauthorized)

	// The user handle must name the credential's owner.
	bob := f.user("bob")
	lying := *k
	lying.Counter = 200
	lying.UserHandle = []byte(bob.ID)
	refused("user handle of another user", "passkey not verified", &lying, "192.0.2.10", account.Unauthorized)

	// The account rules apply as for passwords.
	k.Counter = 300
	if _, err := f.db.UpdateUser(f.ctx, f.alice.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = []string{"10.0.0.0/8"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	refused("outside the allowlist", "network not allowed", k, "192.0.2.11", account.Forbidden)
	if _, _, err := f.login(k, "10.1.2.3"); err != nil {
		t.Errorf("inside the allowlist: %v", err)
	}
	if _, err := f.db.UpdateUser(f.ctx, f.alice.ID, func(u storage.User) (storage.User, error) {
		u.Blocked = true
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	refused("blocked account", "account disabled", k, "10.1.2.3", account.Forbidden)

	// An unknown passkey is refused and recorded without a user.
	stranger := newSoftKey(t, origin)
	stranger.UserHandle = []byte(f.alice.ID)
	if _, _, err := f.login(stranger, "192.0.2.12"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("unknown passkey: %v", err)
	}
	// Garbage and oversized answers.
	for what, body := range map[string][]byte{"garbage": []byte(`{"id":"x"}`), "oversized": bytes.Repeat([]byte("a"), account.MaxPasskeyAnswerBytes+1)} {
		_, id, _ := f.svc.Credentials.BeginPasskeyLogin(f.ctx)
		_, _, err := f.svc.Credentials.FinishPasskeyLogin(f.ctx, id, body, "192.0.2.13", "ua")
		if code := account.ErrorCode(err); code != account.Unauthorized && code != account.Invalid {
			t.Errorf("%s answer: %v", what, err)
		}
	}
}

func TestPasskeySecondFactor(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	origin := "https://id.example.com:8443"
	_, _, err := f.svc.Credentials.BeginPasskeySecondFactor(f.ctx, f.alice)
	wantCode(t, "second factor without a passkey", err, account.Invalid)

	k := newSoftKey(t, origin)
	f.enrol(f.alice, k, "Key")
	bob := f.user("bob")
	bobKey := newSoftKey(t, origin)
	f.enrol(bob, bobKey, "Key")

	opts, id, err := f.svc.Credentials.BeginPasskeySecondFactor(f.ctx, f.alice)
	if err != nil {
		t.Fatal(err)
	}
	allowed := parseOptions(t, opts).PublicKey.AllowCredentials
	if len(allowed) != 1 || allowed[0].ID != b64.EncodeToString(k.ID) {
		t.Errorf("allowed credentials: %+v", allowed)
	}
	// Bob's passkey cannot stand in for alice's second factor.
	_, err = f.svc.Credentials.FinishPasskeySecondFactor(f.ctx, f.alice, id, bobKey.Assert(opts), "192.0.2.1", "ua")
	wantCode(t, "another user's passkey", err, account.Unauthorized)
	if a := f.lastAttempt(f.alice); a.Success || a.Reason != "unknown passkey" {
		t.Errorf("recorded %+v", a)
	}
	// Nor can alice's second-factor challenge be used by bob's session.
	opts, id, _ = f.svc.Credentials.BeginPasskeySecondFactor(f.ctx, f.alice)
	_, err = f.svc.Credentials.FinishPasskeySecondFactor(f.ctx, bob, id, bobKey.Assert(opts), "192.0.2.1", "ua")
	wantCode(t, "alice's challenge for bob", err, account.Invalid)

	opts, id, _ = f.svc.Credentials.BeginPasskeySecondFactor(f.ctx, f.alice)
	amr, err := f.svc.Credentials.FinishPasskeySecondFactor(f.ctx, f.alice, id, k.Assert(opts), "192.0.2.1", "ua")
	if err != nil || !slices.Equal(amr, []string{"hwk", "mfa"}) {
		t.Fatalf("second factor: %v %v", amr, err)
	}
}

func TestRenameAndDeletePasskey(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	origin := "https://id.example.com:8443"
	a := f.enrol(f.alice, newSoftKey(t, origin), "Laptop")
	b := f.enrol(f.alice, newSoftKey(t, origin), "Phone")

	if err := f.svc.Credentials.RenamePasskey(f.ctx, f.alice, a.ID, " Work laptop "); err != nil {
		t.Fatal(err)
	}
	// Changing only the case of its own name is a rename, not a clash.
	if err := f.svc.Credentials.RenamePasskey(f.ctx, f.alice, a.ID, "WORK laptop"); err != nil {
		t.Fatalf("case-only rename: %v", err)
	}
	if c, _ := f.db.GetCredential(f.ctx, f.alice.ID, a.ID); c.Name != "WORK laptop" {
		t.Errorf("name %q", c.Name)
	}
	wantCode(t, "rename to another passkey's name", f.svc.Credentials.RenamePasskey(f.ctx, f.alice, a.ID, "phone"), account.Conflict)
	wantCode(t, "empty name", f.svc.Credentials.RenamePasskey(f.ctx, f.alice, a.ID, "  "), account.Invalid)
	wantCode(t, "long name", f.svc.Credentials.RenamePasskey(f.ctx, f.alice, a.ID, strings.Repeat("n", 65)), account.Invalid)
	if c, _ := f.db.GetCredential(f.ctx, f.alice.ID, a.ID); c.Name != "WORK laptop" {
		t.Errorf("a refused rename changed the name to %q", c.Name)
	}

	// Only one's own passkeys, and only passkeys.
	bob := f.user("bob")
	wantCode(t, "rename another user's passkey", f.svc.Credentials.RenamePasskey(f.ctx, bob, a.ID, "Mine"), account.NotFound)
	wantCode(t, "delete another user's passkey", f.svc.Credentials.DeletePasskey(f.ctx, bob, a.ID), account.NotFound)
	_, app, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "Mail", "")
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "rename an app password as a passkey", f.svc.Credentials.RenamePasskey(f.ctx, f.alice, app.ID, "x"), account.NotFound)
	wantCode(t, "delete an app password as a passkey", f.svc.Credentials.DeletePasskey(f.ctx, f.alice, app.ID), account.NotFound)
	wantCode(t, "delete nothing", f.svc.Credentials.DeletePasskey(f.ctx, f.alice, ""), account.NotFound)

	if err := f.svc.Credentials.DeletePasskey(f.ctx, f.alice, b.ID); err != nil {
		t.Fatal(err)
	}
	if ks := f.passkeys(f.alice); len(ks) != 1 || ks[0].ID != a.ID {
		t.Errorf("after delete: %+v", ks)
	}
	wantCode(t, "delete twice", f.svc.Credentials.DeletePasskey(f.ctx, f.alice, b.ID), account.NotFound)
	if _, err := f.db.GetCredential(f.ctx, f.alice.ID, app.ID); err != nil {
		t.Errorf("the app password went too: %v", err)
	}
}
