package account_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// newProfileService is a service with the given policy (the profile rules
// read Issuer and ProfilesLocked) on a settable clock, so "changed" is
// visible in UpdatedAt without waiting.
func newProfileService(t *testing.T, p account.Policy) (*account.Service, storage.Store, *testclock.Clock) {
	t.Helper()
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	p.Argon2, p.MinPasswordLength, p.SessionLifetime = testArgon, 10, time.Hour
	if p.Issuer == "" {
		p.Issuer = "https://id.example.com"
	}
	svc, db := account.NewTestService(t, account.TestServiceOptions{Policy: p, Now: clock.Now})
	return svc, db, clock
}

func newProfileUser(t *testing.T, svc *account.Service, name string) storage.User {
	t.Helper()
	u, err := svc.Users.CreateUser(context.Background(), account.NewUser{Username: name, Email: name + "@example.com", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func getUser(t *testing.T, db storage.Store, id string) storage.User {
	t.Helper()
	u, err := db.GetUser(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The table's own invariants: the page, the locks and the claims all read
// it, so a wrong row would be wrong everywhere at once.
func TestAttributeTable(t *testing.T) {
	// Claims that must never be released, whatever the scopes.
	internal := []string{"password_hash", "blocked", "last_ip", "last_login", "logins_count", "app_metadata",
		"recovery_email", "theme", "custom_data", "totp_secret", "recovery_codes", "allowed_networks", "source", "created_at"}
	seen := map[string]bool{}
	for _, a := range account.Attributes {
		if a.Key == "" || a.Label == "" || seen[a.Key] {
			t.Errorf("row %q: empty or duplicate key/label", a.Key)
		}
		seen[a.Key] = true
		if a.Claim != "" && a.Scope == "" {
			t.Errorf("%s: claim %q without a scope releasing it", a.Key, a.Claim)
		}
		if slices.Contains(internal, a.Claim) {
			t.Errorf("%s: internal value released as claim %q", a.Key, a.Claim)
		}
		if a.DirectoryOwnable && a.Key == "username" {
			t.Error("the username cannot be owned by anything but the account")
		}
		got, ok := account.AttributeByKey(a.Key)
		if !ok || got.Key != a.Key {
			t.Errorf("AttributeByKey(%q) = %v", a.Key, ok)
		}
		_ = a.Value(storage.User{}) // every row can show a value
	}
	for _, key := range []string{"id", "username", "given_name", "family_name", "name", "nickname", "email", "email_verified",
		"recovery_email", "phone_number", "phone_number_verified", "picture", "locale", "zoneinfo", "theme", "roles", "groups",
		"created_at", "last_login"} {
		if !seen[key] {
			t.Errorf("no row for %q", key)
		}
	}
	if _, ok := account.AttributeByKey("password_hash"); ok {
		t.Error("a row exposes the password hash")
	}
}

func TestProfileValidation(t *testing.T) {
	long := strings.Repeat("n", 201)
	cases := []struct {
		key, value string
		code       account.Code // "" = accepted
		check      func(u storage.User) bool
	}{
		{"given_name", " Alice ", "", func(u storage.User) bool { return u.GivenName == "Alice" }},
		{"given_name", strings.Repeat("ä", 200), "", func(u storage.User) bool { return len([]rune(u.GivenName)) == 200 }},
		{"given_name", long, account.Invalid, nil},
		{"family_name", "Line\nbreak", account.Invalid, nil},
		{"nickname", "nul\x00", account.Invalid, nil},
		{"name", "Dr. Alice L.", "", func(u storage.User) bool { return u.Name == "Dr. Alice L." }},
		{"email", "alice.new@example.org", "", func(u storage.User) bool { return u.Email == "alice.new@example.org" && !u.EmailVerified }},
		{"email", "not-an-address", account.Invalid, nil},
		{"email", "", account.Invalid, nil},
		{"email", "Alice <alice@example.org>", account.Invalid, nil},
		{"recovery_email", "", "", func(u storage.User) bool { return u.RecoveryEmail == "" }},
		{"recovery_email", "backup@example.net", "", func(u storage.User) bool { return u.RecoveryEmail == "backup@example.net" }},
		{"recovery_email", "backup", account.Invalid, nil},
		{"phone_number", "+49 151 2345 6789", "", func(u storage.User) bool { return u.PhoneNumber == "+4915123456789" && !u.PhoneVerified }},
		{"phone_number", "", "", func(u storage.User) bool { return u.PhoneNumber == "" }},
		{"phone_number", "015123456789", account.Invalid, nil},
		{"phone_number", "+0123456789", account.Invalid, nil},
		{"phone_number", "+12345", account.Invalid, nil},
		{"phone_number", "+1234567890123456", account.Invalid, nil},
		{"phone_number", "+49-151-23456789", account.Invalid, nil},
		{"locale", "de", "", func(u storage.User) bool { return u.Locale == "de" }},
		{"locale", "de-AT", "", func(u storage.User) bool { return u.Locale == "de" }},
		{"locale", "EN", "", func(u storage.User) bool { return u.Locale == "en" }},
		{"locale", "", "", func(u storage.User) bool { return u.Locale == "" }},
		{"locale", "fr", account.Invalid, nil},
		{"locale", "!!", account.Invalid, nil},
		{"zoneinfo", "Europe/Berlin", "", func(u storage.User) bool { return u.Zoneinfo == "Europe/Berlin" }},
		{"zoneinfo", "", "", func(u storage.User) bool { return u.Zoneinfo == "" }},
		{"zoneinfo", "Local", account.Invalid, nil},
		{"zoneinfo", "Mars/Olympus_Mons", account.Invalid, nil},
		{"zoneinfo", "../../etc/passwd", account.Invalid, nil},
		{"theme", "dark", "", func(u storage.User) bool { return u.Theme == "dark" }},
		{"theme", "system", "", func(u storage.User) bool { return u.Theme == "" }},
		{"theme", "neon", account.Invalid, nil},
		// Not changeable through the profile at all.
		{"username", "mallory", account.Forbidden, nil},
		{"id", "someone-else", account.Forbidden, nil},
		{"email_verified", "true", account.Forbidden, nil},
		{"phone_number_verified", "true", account.Forbidden, nil},
		{"roles", "admin", account.Forbidden, nil},
		{"groups", "admins", account.Forbidden, nil},
		{"created_at", "2000-01-01T00:00:00Z", account.Forbidden, nil},
		{"last_login", "2000-01-01T00:00:00Z", account.Forbidden, nil},
		{"picture", "https://evil.example/x.png", account.Forbidden, nil},
		{"password_hash", "x", account.Invalid, nil},
	}
	for _, c := range cases {
		t.Run(c.key+"="+c.value[:min(len(c.value), 20)], func(t *testing.T) {
			svc, db, clock := newProfileService(t, account.Policy{})
			u := newProfileUser(t, svc, "alice")
			ctx := context.Background()
			// Verified flags set, to see changes clear them.
			if _, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
				u.EmailVerified, u.PhoneNumber, u.PhoneVerified = true, "+4930123456", true
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
			before := getUser(t, db, u.ID)
			clock.Add(time.Hour)
			got, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{c.key: c.value})
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				stored := getUser(t, db, u.ID)
				if !c.check(stored) || !c.check(got) {
					t.Fatalf("not applied: %+v", stored)
				}
				// A change moves the last change; a value as it was, nothing.
				want := clock.Now()
				if a, _ := account.AttributeByKey(c.key); a.Value(stored) == a.Value(before) {
					want = before.UpdatedAt
				}
				if !stored.UpdatedAt.Equal(want) {
					t.Errorf("UpdatedAt %v, want %v", stored.UpdatedAt, want)
				}
				return
			}
			if account.ErrorCode(err) != c.code || account.ErrorField(err) != c.key || account.ErrorMessage(err) == "" {
				t.Fatalf("err = %v (code %s, field %q), want %s on %q", err, account.ErrorCode(err), account.ErrorField(err), c.code, c.key)
			}
			if after := getUser(t, db, u.ID); !after.UpdatedAt.Equal(before.UpdatedAt) || after.Username != "alice" || !after.EmailVerified {
				t.Fatalf("a refused change wrote: %+v", after)
			}
		})
	}
}

func TestUpdateProfileIsAllOrNothing(t *testing.T) {
	svc, db, clock := newProfileService(t, account.Policy{})
	alice := newProfileUser(t, svc, "alice")
	ctx := context.Background()
	before := getUser(t, db, alice.ID)
	clock.Add(time.Minute)

	// Good fields beside one bad one: nothing is saved.
	_, err := svc.Users.UpdateProfile(ctx, alice.ID, map[string]string{
		"given_name": "Alice", "family_name": "Liddell", "zoneinfo": "Europe/Berlin", "phone_number": "0151",
	})
	if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "phone_number" {
		t.Fatalf("err = %v", err)
	}
	// A locked field beside a bad value: the lock is what is reported.
	_, err = svc.Users.UpdateProfile(ctx, alice.ID, map[string]string{"email": "bad", "username": "mallory", "given_name": "A"})
	if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "username" || account.ErrorMessage(err) != account.ReasonUsername {
		t.Fatalf("err = %v", err)
	}
	if after := getUser(t, db, alice.ID); after.GivenName != "" || after.FamilyName != "" || after.Zoneinfo != "" ||
		after.Username != "alice" || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("a refused update wrote: %+v", after)
	}

	// Everything good: one write with all of it.
	u, err := svc.Users.UpdateProfile(ctx, alice.ID, map[string]string{
		"given_name": "Alice", "family_name": "Liddell", "zoneinfo": "Europe/Berlin", "phone_number": "+4915123456789",
	})
	if err != nil || u.GivenName != "Alice" || u.FamilyName != "Liddell" || u.Zoneinfo != "Europe/Berlin" || u.PhoneNumber != "+4915123456789" {
		t.Fatalf("update: %v %+v", err, u)
	}
	if !u.UpdatedAt.Equal(clock.Now()) {
		t.Errorf("UpdatedAt = %v", u.UpdatedAt)
	}
	// No changes: the user as stored, untouched.
	if u2, err := svc.Users.UpdateProfile(ctx, alice.ID, nil); err != nil || !u2.UpdatedAt.Equal(u.UpdatedAt) {
		t.Errorf("empty update: %v", err)
	}
	if _, err := svc.Users.UpdateProfile(ctx, "no-such-user", map[string]string{"given_name": "X"}); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user: %v", err)
	}
}

func TestUpdateProfileEmailConflict(t *testing.T) {
	svc, db, _ := newProfileService(t, account.Policy{})
	alice := newProfileUser(t, svc, "alice")
	newProfileUser(t, svc, "bob")
	ctx := context.Background()
	for _, taken := range []string{"bob@example.com", "BOB@example.com"} {
		_, err := svc.Users.UpdateProfile(ctx, alice.ID, map[string]string{"email": taken, "given_name": "Alice"})
		if account.ErrorCode(err) != account.Conflict || account.ErrorField(err) != "email" {
			t.Errorf("%s: err = %v (%s)", taken, err, account.ErrorCode(err))
		}
	}
	if u := getUser(t, db, alice.ID); u.Email != "alice@example.com" || u.GivenName != "" {
		t.Fatalf("conflicting update wrote: %+v", u)
	}
	// Changing only the case of one's own address is no clash, and keeps
	// the verified flag (it is the same address).
	if _, err := db.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) { u.EmailVerified = true; return u, nil }); err != nil {
		t.Fatal(err)
	}
	u, err := svc.Users.UpdateProfile(ctx, alice.ID, map[string]string{"email": "Alice@example.com"})
	if err != nil || u.Email != "Alice@example.com" || !u.EmailVerified {
		t.Fatalf("case change: %v %+v", err, u)
	}
}

func TestFieldLocks(t *testing.T) {
	ctx := context.Background()
	local := storage.User{ID: "u1", Username: "alice"}
	fromLDAP := storage.User{ID: "u2", Username: "carol", Source: "corp-ldap"}

	open, _, _ := newProfileService(t, account.Policy{})
	locked, _, _ := newProfileService(t, account.Policy{ProfilesLocked: true})
	cases := []struct {
		name   string
		svc    *account.Service
		u      storage.User
		key    string
		locked bool
		reason string
	}{
		{"username, local", open, local, "username", true, account.ReasonUsername},
		{"username, admin lock", locked, local, "username", true, account.ReasonUsername},
		{"username, directory", open, fromLDAP, "username", true, account.ReasonUsername},
		{"name, local", open, local, "given_name", false, ""},
		{"email, local", open, local, "email", false, ""},
		{"picture, local", open, local, "picture", false, ""},
		{"name, admin lock", locked, local, "given_name", true, account.ReasonAdminLock},
		{"language, admin lock", locked, local, "locale", true, account.ReasonAdminLock},
		{"avatar, admin lock", locked, local, "picture", true, account.ReasonAdminLock},
		{"theme, admin lock", locked, local, "theme", false, ""}, // a portal preference, not profile data
		{"email, directory", open, fromLDAP, "email", true, "Managed by corp-ldap."},
		{"avatar, directory", open, fromLDAP, "picture", true, "Managed by corp-ldap."},
		{"email, directory and admin lock", locked, fromLDAP, "email", true, "Managed by corp-ldap."},
		{"time zone, directory", open, fromLDAP, "zoneinfo", false, ""}, // no directory owns it
		{"verified flag", open, local, "email_verified", true, account.ReasonReadOnly},
		{"unknown", open, local, "shoe_size", true, account.ReasonReadOnly},
	}
	for _, c := range cases {
		if locked, reason := c.svc.Users.FieldLock(c.u, c.key); locked != c.locked || reason != c.reason {
			t.Errorf("%s: FieldLock = %v %q, want %v %q", c.name, locked, reason, c.locked, c.reason)
		}
	}
	if got := open.Users.Source(fromLDAP, "email"); got != "corp-ldap" {
		t.Errorf("source of a directory field: %q", got)
	}
	if got := open.Users.Source(fromLDAP, "zoneinfo"); got != "Keyport" {
		t.Errorf("source of a local field: %q", got)
	}

	// The directory issue narrows what a source owns through the hook.
	saved := account.DirectoryOwnedFields
	t.Cleanup(func() { account.DirectoryOwnedFields = saved })
	account.DirectoryOwnedFields = func(source string) []string {
		if source == "corp-ldap" {
			return []string{"email"}
		}
		return nil
	}
	if l, _ := open.Users.FieldLock(fromLDAP, "given_name"); l {
		t.Error("a field the source does not own is locked")
	}
	if l, _ := open.Users.FieldLock(fromLDAP, "email"); !l {
		t.Error("a field the source owns is editable")
	}

	// The service refuses locked fields, with the reason and the field.
	u := newProfileUser(t, locked, "dave")
	_, err := locked.Users.UpdateProfile(ctx, u.ID, map[string]string{"given_name": "Crafted"})
	if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "given_name" || account.ErrorMessage(err) != account.ReasonAdminLock {
		t.Errorf("locked update: %v", err)
	}
	if got, err := locked.Users.UpdateProfile(ctx, u.ID, map[string]string{"theme": "dark"}); err != nil || got.Theme != "dark" {
		t.Errorf("theme while profiles are locked: %v", err)
	}
}

func TestDirectoryUserUpdate(t *testing.T) {
	svc, db, _ := newProfileService(t, account.Policy{})
	carol := newProfileUser(t, svc, "carol")
	ctx := context.Background()
	if _, err := db.UpdateUser(ctx, carol.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	_, err := svc.Users.UpdateProfile(ctx, carol.ID, map[string]string{"family_name": "X", "zoneinfo": "Europe/Paris"})
	if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "family_name" || !strings.Contains(account.ErrorMessage(err), "corp-ldap") {
		t.Fatalf("directory field: %v", err)
	}
	if u := getUser(t, db, carol.ID); u.Zoneinfo != "" || u.FamilyName != "" {
		t.Fatalf("refused update wrote: %+v", u)
	}
	if u, err := svc.Users.UpdateProfile(ctx, carol.ID, map[string]string{"zoneinfo": "Europe/Paris"}); err != nil || u.Zoneinfo != "Europe/Paris" {
		t.Fatalf("own field: %v", err)
	}
}

func TestSetCustomData(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newProfileService(t, account.Policy{})
	alice := newProfileUser(t, svc, "alice")

	many := map[string]string{}
	for i := range 21 {
		many["key"+string(rune('a'+i))] = "v"
	}
	for name, data := range map[string]map[string]string{
		"21 entries":       many,
		"digit first":      {"1st": "x"},
		"space":            {"my key": "x"},
		"41 characters":    {"k" + strings.Repeat("e", 40): "x"},
		"empty key":        {"": "x"},
		"501 characters":   {"note": strings.Repeat("ü", 501)},
		"NUL in the value": {"note": "a\x00b"},
	} {
		if _, err := svc.Users.SetCustomData(ctx, alice.ID, data); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "custom_data" {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if u := getUser(t, db, alice.ID); u.CustomData != nil {
		t.Fatalf("refused data stored: %v", u.CustomData)
	}

	good := map[string]string{"team": "blue", "shirt.size": "M", "x-ref_1": strings.Repeat("ü", 500), "k" + strings.Repeat("e", 39): ""}
	u, err := svc.Users.SetCustomData(ctx, alice.ID, good)
	if err != nil || len(u.CustomData) != 4 || getUser(t, db, alice.ID).CustomData["team"] != "blue" {
		t.Fatalf("set: %v %v", err, u.CustomData)
	}
	// Replacing with nothing removes it all.
	if u, err := svc.Users.SetCustomData(ctx, alice.ID, map[string]string{}); err != nil || u.CustomData != nil {
		t.Fatalf("clear: %v %v", err, u.CustomData)
	}

	locked, ldb, _ := newProfileService(t, account.Policy{ProfilesLocked: true})
	bob := newProfileUser(t, locked, "bob")
	if _, err := locked.Users.SetCustomData(ctx, bob.ID, map[string]string{"a": "b"}); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("custom data while profiles are locked: %v", err)
	}
	if getUser(t, ldb, bob.ID).CustomData != nil {
		t.Error("locked custom data changed")
	}
}

func TestClaimsFromTable(t *testing.T) {
	issuer := "https://id.example.com/"
	u := storage.User{
		ID: "u1", Username: "alice", Email: "alice@example.com", EmailVerified: true,
		GivenName: "Alice", FamilyName: "Liddell", Nickname: "al", Locale: "de", Zoneinfo: "Europe/Berlin",
		PhoneNumber: "+4915123456789", Roles: []string{"editor"}, Groups: []string{"staff"},
		UpdatedAt: time.Unix(1700000000, 0), AvatarAt: time.Unix(1700000100, 0),
		// Never released:
		RecoveryEmail: "r@example.com", Theme: "dark", CustomData: map[string]string{"k": "v"}, AppMetadata: map[string]string{"plan": "pro"},
		PasswordHash: "$argon2id$x", Blocked: true, LastIP: "192.0.2.1", LastLogin: time.Unix(1700000200, 0), LoginsCount: 7,
		Source: "corp-ldap", AllowedNetworks: []string{"10.0.0.0/8"}, RecoveryCodes: []string{"h"}, TOTPSecret: []byte("s"),
	}
	want := map[string]map[string]any{
		"openid": {},
		"profile": {
			"name": "Alice Liddell", "given_name": "Alice", "family_name": "Liddell", "nickname": "al",
			"preferred_username": "alice", "locale": "de", "zoneinfo": "Europe/Berlin", "updated_at": int64(1700000000),
			"picture": "https://id.example.com/avatar/u1?v=1700000100",
		},
		"email":  {"email": "alice@example.com", "email_verified": true},
		"phone":  {"phone_number": "+4915123456789", "phone_number_verified": false},
		"groups": {"roles": []string{"editor"}, "groups": []string{"staff"}},
	}
	for scope, w := range want {
		got := account.Claims(u, []string{"openid", scope}, issuer)
		if len(got) != len(w) {
			t.Errorf("scope %s: %v, want %v", scope, got, w)
		}
		for k, v := range w {
			if !equalClaim(got[k], v) {
				t.Errorf("scope %s: %s = %#v, want %#v", scope, k, got[k], v)
			}
		}
	}
	all := account.Claims(u, []string{"openid", "profile", "email", "phone", "groups"}, issuer)
	for _, hidden := range []string{"sub", "recovery_email", "theme", "custom_data", "app_metadata", "blocked", "last_ip", "last_login",
		"logins_count", "password_hash", "source", "created_at", "allowed_networks"} {
		if _, ok := all[hidden]; ok {
			t.Errorf("claims include %s", hidden)
		}
	}
	for _, v := range all {
		if s, ok := v.(string); ok && (strings.Contains(s, "r@example.com") || strings.Contains(s, "argon2")) {
			t.Errorf("a hidden value leaked: %v", v)
		}
	}

	// Without a set name, an avatar or a phone: derived name, unversioned
	// picture (the initials image), no phone claims.
	bare := storage.User{ID: "u2", Username: "bob"}
	got := account.Claims(bare, []string{"openid", "profile", "phone"}, "https://id.example.com")
	if got["name"] != "bob" || got["picture"] != "https://id.example.com/avatar/u2" {
		t.Errorf("bare profile claims: %v", got)
	}
	for _, absent := range []string{"phone_number", "phone_number_verified", "given_name", "locale", "updated_at"} {
		if _, ok := got[absent]; ok {
			t.Errorf("bare profile has %s", absent)
		}
	}
}

func equalClaim(got, want any) bool {
	if ws, ok := want.([]string); ok {
		gs, ok := got.([]string)
		return ok && slices.Equal(gs, ws)
	}
	return got == want
}

func TestDisplayNameAndRecoveryAddress(t *testing.T) {
	for _, c := range []struct {
		u    storage.User
		want string
	}{
		{storage.User{Username: "al", Name: "Set Name", GivenName: "A", FamilyName: "L"}, "Set Name"},
		{storage.User{Username: "al", GivenName: "Alice", FamilyName: "Liddell"}, "Alice Liddell"},
		{storage.User{Username: "al", GivenName: "Alice"}, "Alice"},
		{storage.User{Username: "al", FamilyName: "Liddell"}, "Liddell"},
		{storage.User{Username: "al"}, "al"},
	} {
		if got := account.DisplayName(c.u); got != c.want {
			t.Errorf("DisplayName(%+v) = %q, want %q", c.u, got, c.want)
		}
	}
	svc, _, _ := newProfileService(t, account.Policy{})
	if got := svc.Users.RecoveryAddress(storage.User{Email: "a@example.com"}); got != "a@example.com" {
		t.Errorf("default recovery address %q", got)
	}
	if got := svc.Users.RecoveryAddress(storage.User{Email: "a@example.com", RecoveryEmail: "b@example.com"}); got != "b@example.com" {
		t.Errorf("recovery address %q", got)
	}
}
