package account_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// settingsPatch is a merge patch from Go values (nil: back to the default).
func settingsPatch(t *testing.T, kv map[string]any) account.SettingsPatch {
	t.Helper()
	p := account.SettingsPatch{}
	for k, v := range kv {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p[k] = b
	}
	return p
}

// TestSettingsTakeEffectAtOnce changes each kind of runtime setting and
// checks the rule it drives on the same Service, with no restart.
func TestSettingsTakeEffectAtOnce(t *testing.T) {
	f := newAdminFixture(t)
	alice := f.user("alice", false)
	_, etag, err := f.svc.Admin.Settings(f.ctx, f.actor)
	if err != nil {
		t.Fatal(err)
	}

	// Profiles locked: a profile update is refused from now on.
	if _, err := f.svc.Users.UpdateProfile(f.ctx, alice.ID, map[string]string{"given_name": "Ally"}); err != nil {
		t.Fatalf("update before the lock: %v", err)
	}
	view, etag, err := f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"profiles_locked": true}))
	if err != nil {
		t.Fatal(err)
	}
	if !*view.Effective.ProfilesLocked || *view.Defaults.ProfilesLocked || !f.svc.Policy().ProfilesLocked {
		t.Fatalf("after locking: %+v", view)
	}
	if _, err := f.svc.Users.UpdateProfile(f.ctx, alice.ID, map[string]string{"given_name": "Al"}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("update while locked: %v", err)
	}
	ev := f.lastEvent("", account.EventSettingsUpdated)
	if ev.ActorID != f.root.ID || len(ev.Changes) != 1 || ev.Changes[0] != (storage.AuditChange{Field: "profiles_locked", After: "true"}) {
		t.Errorf("event: %+v", ev)
	}

	// 2FA for admins: root (an admin without a factor) must enrol, alice not.
	if _, etag, err = f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"require_2fa": "admins"})); err != nil {
		t.Fatal(err)
	}
	if needs, err := f.svc.Credentials.NeedsEnrolment(f.ctx, f.stored(f.root.ID)); err != nil || !needs {
		t.Errorf("admin needs enrolment: %v %v", needs, err)
	}
	if needs, err := f.svc.Credentials.NeedsEnrolment(f.ctx, f.stored(alice.ID)); err != nil || needs {
		t.Errorf("user needs enrolment: %v %v", needs, err)
	}
	if err := f.svc.Credentials.CheckTwoFactorPolicy(f.ctx, f.stored(f.root.ID)); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("admin without a factor passes: %v", err)
	}

	// A longer minimum length refuses a password that passed before.
	const pw = "purple-otter-41" // 15 characters
	if err := f.svc.Users.CheckPassword(f.ctx, pw, "alice", "alice@example.com"); err != nil {
		t.Fatalf("password before: %v", err)
	}
	if _, etag, err = f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"password_min_length": 20})); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Users.CheckPassword(f.ctx, pw, "alice", "alice@example.com"); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("short password after raising the minimum: %v", err)
	}

	// Throttling: one failure per account and address trips the limit.
	if _, _, err = f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"max_login_attempts": 1, "login_window": "10m"})); err != nil {
		t.Fatal(err)
	}
	if p := f.svc.Policy(); p.MaxLoginAttempts != 1 || p.LoginWindow != 10*time.Minute {
		t.Fatalf("policy: %+v", p)
	}
	res, err := f.svc.Throttle().Password(f.ctx, throttle.User(alice.ID), "198.51.100.7", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Fail(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Throttle().Password(f.ctx, throttle.User(alice.ID), "198.51.100.7", false); err == nil {
		t.Fatal("second attempt not throttled after lowering max_login_attempts to 1")
	}

	// null returns a setting to its default.
	view, _, err = f.svc.Admin.Settings(f.ctx, f.actor)
	if err != nil {
		t.Fatal(err)
	}
	view, _, err = f.svc.Admin.UpdateSettings(f.ctx, f.actor, "", account.SettingsPatch{"profiles_locked": json.RawMessage("null")})
	if err != nil || view.Stored.ProfilesLocked != nil || *view.Effective.ProfilesLocked {
		t.Fatalf("reset: %v %+v", err, view)
	}
	if _, err := f.svc.Users.UpdateProfile(f.ctx, alice.ID, map[string]string{"given_name": "Al"}); err != nil {
		t.Fatalf("update after the reset: %v", err)
	}
}

func TestSettingsRefusals(t *testing.T) {
	f := newAdminFixture(t)
	_, etag, err := f.svc.Admin.Settings(f.ctx, f.actor)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		patch map[string]any
		field string
	}{
		{map[string]any{"require_2fa": "sometimes"}, "require_2fa"},
		{map[string]any{"password_min_length": 4}, "password_min_length"},
		{map[string]any{"password_min_score": 5}, "password_min_score"},
		{map[string]any{"password_min_length": "long"}, "password_min_length"},
		{map[string]any{"max_login_attempts": 0}, "max_login_attempts"},
		{map[string]any{"login_window": "soon"}, "login_window"},
		{map[string]any{"login_window": "-1m"}, "login_window"},
		{map[string]any{"profiles_locked": "yes"}, "profiles_locked"},
		{map[string]any{"account_lockout_failures": 3, "account_lockout_wait": "1h", "account_lockout_max_wait": "1m"}, "account_lockout_max_wait"},
		{map[string]any{"issuer": "https://evil.example"}, "issuer"},
	} {
		_, _, err := f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, c.patch))
		var e *account.Error
		if account.ErrorCode(err) != account.Invalid || !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("%v: %v, want Invalid on %s", c.patch, err, c.field)
		}
	}
	view, etag2, err := f.svc.Admin.Settings(f.ctx, f.actor)
	if err != nil || etag2 != etag || view.Stored != (account.Settings{}) {
		t.Fatalf("refused patches changed the settings: %v %+v", err, view.Stored)
	}

	ro := f.actor
	ro.ReadOnly = true
	if _, _, err := f.svc.Admin.UpdateSettings(f.ctx, ro, "", settingsPatch(t, map[string]any{"profiles_locked": true})); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("read-only: %v", err)
	}
	if _, _, err := f.svc.Admin.Settings(f.ctx, ro); err != nil {
		t.Errorf("read-only read: %v", err)
	}
	alice := f.user("alice", false)
	user := account.Actor{Kind: account.ActorUser, UserID: alice.ID}
	if _, _, err := f.svc.Admin.Settings(f.ctx, user); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("non-admin read: %v", err)
	}

	if _, _, err := f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"profiles_locked": true})); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{"profiles_locked": false})); account.ErrorCode(err) != account.PreconditionFailed {
		t.Errorf("stale ETag: %v", err)
	}
	if !f.svc.Policy().ProfilesLocked {
		t.Error("a refused change took effect")
	}
}

// Stored settings survive a restart: a new Service over the same store
// applies them once LoadSettings runs (main calls it at start), and a new
// config.toml default shows through where nothing is stored.
func TestSettingsLoadedAtStart(t *testing.T) {
	f := newAdminFixture(t)
	if _, _, err := f.svc.Admin.UpdateSettings(f.ctx, f.actor, "", settingsPatch(t, map[string]any{"require_2fa": "everyone", "password_min_score": 3})); err != nil {
		t.Fatal(err)
	}
	again, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: account.Policy{MinPasswordLength: 12, MaxLoginAttempts: 7, LoginWindow: time.Minute}})
	if again.Policy().Require2FA {
		t.Fatal("settings in force before LoadSettings")
	}
	if err := again.Admin.LoadSettings(f.ctx); err != nil {
		t.Fatal(err)
	}
	if p := again.Policy(); !p.Require2FA || p.MinPasswordScore != 3 || p.MinPasswordLength != 12 || p.MaxLoginAttempts != 7 {
		t.Errorf("policy after the restart: %+v", p)
	}
}

// A stored setting that clashes with a config.toml changed since stays in
// force (the admin chose it) rather than stopping the start.
func TestSettingsClashWithNewDefaults(t *testing.T) {
	f := newAdminFixture(t)
	lockout := account.Policy{AccountLockoutFailures: 5, AccountLockoutWait: time.Minute, AccountLockoutMaxWait: time.Hour, AccountLockoutReset: time.Hour, MaxLoginAttempts: 5, LoginWindow: time.Minute}
	first, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: lockout})
	if _, _, err := first.Admin.UpdateSettings(f.ctx, f.actor, "", settingsPatch(t, map[string]any{"account_lockout_max_wait": "10m"})); err != nil {
		t.Fatal(err)
	}
	lockout.AccountLockoutWait = time.Hour // config.toml's first wait, raised since
	again, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: lockout})
	if err := again.Admin.LoadSettings(f.ctx); err != nil {
		t.Fatalf("start refused: %v", err)
	}
	if p := again.Policy(); p.AccountLockoutMaxWait != 10*time.Minute {
		t.Errorf("stored max wait not in force: %s", p.AccountLockoutMaxWait)
	}
	if _, _, err := again.Admin.UpdateSettings(f.ctx, f.actor, "", settingsPatch(t, map[string]any{"profiles_locked": true})); account.ErrorField(err) != "account_lockout_max_wait" {
		t.Errorf("a change beside the clash: %v", err)
	}
}

// The session and token lifetimes are runtime settings: in force at once
// (the policy the sign-in and the provider read per request), shown with
// config.toml's defaults, held to their bounds by name, back to the
// default with null, and audited like the others.
func TestSettingsLifetimes(t *testing.T) {
	f := newAdminFixture(t)
	defaults := account.Policy{
		SessionLifetime: 720 * time.Hour, AccessTokenLifetime: 15 * time.Minute, IDTokenLifetime: time.Hour,
		RefreshTokenLifetime: 720 * time.Hour, RefreshTokenIdle: 168 * time.Hour, MaxLoginAttempts: 100, LoginWindow: time.Minute,
	}
	svc, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: defaults, Now: f.clock.Now})
	view, etag, err := svc.Admin.Settings(f.ctx, f.actor)
	if err != nil {
		t.Fatal(err)
	}
	if *view.Defaults.SessionLifetime != account.Duration(720*time.Hour) || *view.Effective.AccessTokenLifetime != account.Duration(15*time.Minute) ||
		*view.Defaults.RefreshTokenIdle != account.Duration(168*time.Hour) || view.Stored.IDTokenLifetime != nil {
		t.Fatalf("before: %+v", view)
	}

	for _, c := range []struct {
		key   string
		value any
	}{
		{"session_lifetime", "1m"},
		{"session_lifetime", "9601h"},
		{"access_token_lifetime", "30s"},
		{"access_token_lifetime", "25h"}, // longer than signing keys stay published
		{"id_token_lifetime", "0s"},
		{"id_token_lifetime", 3600},
		{"refresh_token_lifetime", "0s"},
		{"refresh_token_idle", "-1h"},
	} {
		_, _, err := svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{c.key: c.value}))
		if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != c.key {
			t.Errorf("%s = %v: %v, want Invalid on %s", c.key, c.value, err, c.key)
		}
	}
	if _, again, _ := svc.Admin.Settings(f.ctx, f.actor); again != etag || svc.Policy().AccessTokenLifetime != 15*time.Minute {
		t.Fatal("a refused lifetime changed the settings")
	}

	view, _, err = svc.Admin.UpdateSettings(f.ctx, f.actor, etag, settingsPatch(t, map[string]any{
		"session_lifetime": "2h", "access_token_lifetime": "2m", "id_token_lifetime": "24h",
		"refresh_token_lifetime": "48h", "refresh_token_idle": "12h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := svc.Policy()
	if p.SessionLifetime != 2*time.Hour || p.AccessTokenLifetime != 2*time.Minute || p.IDTokenLifetime != 24*time.Hour ||
		p.RefreshTokenLifetime != 48*time.Hour || p.RefreshTokenIdle != 12*time.Hour {
		t.Fatalf("policy: %+v", p)
	}
	if view.Effective.SettingText("access_token_lifetime") != "2m0s" || view.Defaults.SettingText("access_token_lifetime") != "15m0s" {
		t.Errorf("view: %+v", view)
	}
	ev := f.lastEvent("", account.EventSettingsUpdated)
	want := []storage.AuditChange{
		{Field: "session_lifetime", After: "2h0m0s"}, {Field: "access_token_lifetime", After: "2m0s"}, {Field: "id_token_lifetime", After: "24h0m0s"},
		{Field: "refresh_token_lifetime", After: "48h0m0s"}, {Field: "refresh_token_idle", After: "12h0m0s"},
	}
	if len(ev.Changes) != len(want) {
		t.Fatalf("event changes: %+v", ev.Changes)
	}
	for i := range want {
		if ev.Changes[i] != want[i] {
			t.Errorf("event change %d: %+v, want %+v", i, ev.Changes[i], want[i])
		}
	}
	// The next session lasts the new lifetime.
	_, sess, err := svc.SignIn.StartSession(f.ctx, f.root, []string{"pwd"}, "192.0.2.1", "test")
	if err != nil || sess.ExpiresAt.Sub(sess.CreatedAt) != 2*time.Hour {
		t.Errorf("session: %v, lasts %s", err, sess.ExpiresAt.Sub(sess.CreatedAt))
	}

	// null: back to config.toml's default. (The clock moves, so the two
	// events have an order.)
	f.clock.Add(time.Second)
	view, _, err = svc.Admin.UpdateSettings(f.ctx, f.actor, "", account.SettingsPatch{"access_token_lifetime": json.RawMessage("null"), "session_lifetime": json.RawMessage("null")})
	if err != nil || view.Stored.AccessTokenLifetime != nil || svc.Policy().AccessTokenLifetime != 15*time.Minute || svc.Policy().SessionLifetime != 720*time.Hour {
		t.Fatalf("reset: %v %+v", err, view.Stored)
	}
	if ev := f.lastEvent("", account.EventSettingsUpdated); len(ev.Changes) != 2 || ev.Changes[1] != (storage.AuditChange{Field: "access_token_lifetime", Before: "2m0s"}) {
		t.Errorf("reset event: %+v", ev.Changes)
	}
}

// Access and ID tokens are signed: their lifetimes may reach config.toml's
// where that is longer than an app's longest, and a stored lifetime above
// a ceiling lowered since stays in force, reported by
// MaxSignedTokenLifetime so main keeps retired signing keys that long.
func TestSettingsSignedTokenCeiling(t *testing.T) {
	f := newAdminFixture(t)
	long := account.Policy{AccessTokenLifetime: 48 * time.Hour, IDTokenLifetime: time.Hour, MaxLoginAttempts: 100, LoginWindow: time.Minute}
	first, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: long})
	if got := first.MaxSignedTokenLifetime(); got != 48*time.Hour {
		t.Errorf("ceiling with a 48h default: %s", got)
	}
	if _, _, err := first.Admin.UpdateSettings(f.ctx, f.actor, "", settingsPatch(t, map[string]any{"id_token_lifetime": "49h"})); account.ErrorField(err) != "id_token_lifetime" {
		t.Errorf("ID token above config.toml's access lifetime: %v", err)
	}
	if _, _, err := first.Admin.UpdateSettings(f.ctx, f.actor, "", settingsPatch(t, map[string]any{"id_token_lifetime": "30h"})); err != nil {
		t.Fatalf("30h under a 48h default: %v", err)
	}

	short := long
	short.AccessTokenLifetime = 15 * time.Minute // config.toml lowered since
	again, _ := account.NewTestService(t, account.TestServiceOptions{Store: f.db, Policy: short})
	if got := again.MaxSignedTokenLifetime(); got != account.MaxClientTokenLifetime {
		t.Errorf("ceiling before the stored settings load: %s", got)
	}
	if err := again.Admin.LoadSettings(f.ctx); err != nil {
		t.Fatal(err)
	}
	if p := again.Policy(); p.IDTokenLifetime != 30*time.Hour {
		t.Errorf("stored ID token lifetime not in force: %s", p.IDTokenLifetime)
	}
	if got := again.MaxSignedTokenLifetime(); got != 30*time.Hour {
		t.Errorf("retention after loading a 30h ID token lifetime: %s", got)
	}
}
