package account_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

func newTestClock() *testclock.Clock {
	// 10 s into a 30 s step, so ±1 step stays inside the test's control.
	return testclock.At(time.Date(2026, 3, 1, 9, 0, 10, 0, time.UTC))
}

const securityPassword = "correct horse battery"

// newSecurityService is newService with remembered devices on for
// lifetime (0: off).
func newSecurityService(t *testing.T, clock *testclock.Clock, lifetime time.Duration) (*account.Service, storage.Store) {
	t.Helper()
	return account.NewTestService(t, account.TestServiceOptions{Now: clock.Now, Policy: account.Policy{
		MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour,
		Issuer: "https://id.example.com", TrustedDeviceLifetime: lifetime,
	}})
}

func newSecurityUser(t *testing.T, svc *account.Service, name string) storage.User {
	t.Helper()
	u, err := svc.Users.CreateUser(context.Background(), account.NewUser{Username: name, Email: name + "@example.com", Password: securityPassword})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol turns TOTP on for u at the clock's time and returns the secret, the
// recovery codes and the user as stored.
func enrol(t *testing.T, svc *account.Service, db storage.Store, clock *testclock.Clock, u storage.User) (string, []string, storage.User) {
	t.Helper()
	ctx := context.Background()
	e, err := svc.Credentials.BeginTOTP(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = db.GetUser(ctx, u.ID)
	codes, err := svc.Credentials.ConfirmTOTP(ctx, u, codeAt(t, e.Secret, clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	u, _ = db.GetUser(ctx, u.ID)
	return e.Secret, codes, u
}

func TestTOTPEnrolment(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	u := newSecurityUser(t, svc, "alice")

	if _, err := svc.Credentials.ConfirmTOTP(ctx, u, "123456"); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("confirm without enrolment: %v", err)
	}
	e, err := svc.Credentials.BeginTOTP(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Secret) < 16 || !strings.HasPrefix(e.URL, "otpauth://totp/") || !strings.Contains(e.URL, "alice") || !strings.Contains(e.URL, "issuer=id.example.com") ||
		!strings.Contains(e.URL, "period=30") || !strings.Contains(e.URL, "digits=6") || !strings.Contains(e.URL, "algorithm=SHA1") {
		t.Errorf("enrolment: secret %q, URL %q", e.Secret, e.URL)
	}
	if img, err := png.Decode(bytes.NewReader(e.QRPNG)); err != nil || img.Bounds().Dx() < 100 {
		t.Errorf("QR code is not a usable PNG: %v", err)
	}
	u, _ = db.GetUser(ctx, u.ID)
	if len(u.TOTPPending) == 0 || bytes.Contains(u.TOTPPending, []byte(e.Secret)) || len(u.TOTPSecret) != 0 {
		t.Fatalf("pending secret not stored sealed: %q", u.TOTPPending)
	}
	if again, ok := svc.Credentials.PendingTOTP(u); !ok || again.Secret != e.Secret {
		t.Errorf("pending enrolment cannot be shown again: %v", ok)
	}
	has, _ := svc.Credentials.HasSecondFactor(ctx, u)
	if has || account.HasTOTP(u) {
		t.Fatal("a pending enrolment counts as a second factor")
	}

	// A wrong code changes nothing.
	wrong := "000000"
	if wrong == codeAt(t, e.Secret, clock.Now()) {
		wrong = "111111"
	}
	if _, err := svc.Credentials.ConfirmTOTP(ctx, u, wrong); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "code" {
		t.Fatalf("wrong confirmation code: %v", err)
	}
	if after, _ := db.GetUser(ctx, u.ID); len(after.TOTPSecret) != 0 || len(after.RecoveryCodes) != 0 {
		t.Fatal("a wrong code enabled TOTP")
	}

	code := codeAt(t, e.Secret, clock.Now())
	codes, err := svc.Credentials.ConfirmTOTP(ctx, u, code[:3]+" "+code[3:]) // spaces as apps show them
	if err != nil {
		t.Fatal(err)
	}
	u, _ = db.GetUser(ctx, u.ID)
	if len(codes) != account.RecoveryCodeCount || len(u.RecoveryCodes) != account.RecoveryCodeCount || !account.HasTOTP(u) || len(u.TOTPPending) != 0 {
		t.Fatalf("after confirmation: %d codes, %d hashes, enabled %v", len(codes), len(u.RecoveryCodes), account.HasTOTP(u))
	}
	for _, c := range codes {
		for _, h := range u.RecoveryCodes {
			if strings.Contains(h, c) {
				t.Fatal("recovery code stored in clear")
			}
		}
	}
	if has, err := svc.Credentials.HasSecondFactor(ctx, u); !has || err != nil {
		t.Errorf("HasSecondFactor after enrolment: %v %v", has, err)
	}
	// The code that confirmed the enrolment cannot sign in: its step is used.
	if err := svc.Credentials.VerifyTOTP(ctx, u, code, "192.0.2.1", "test"); account.ErrorCode(err) != account.Invalid {
		t.Errorf("enrolment code reused at sign-in: %v", err)
	}
}

func TestVerifyTOTPStepsAndReplay(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	secret, _, u := enrol(t, svc, db, clock, newSecurityUser(t, svc, "alice"))
	verify := func(at time.Time) error {
		return svc.Credentials.VerifyTOTP(ctx, u, codeAt(t, secret, at), "192.0.2.1", "test")
	}

	clock.Add(30 * time.Second)
	if err := verify(clock.Now()); err != nil {
		t.Fatalf("current code: %v", err)
	}
	// Replay of the same code, and of an older step: refused.
	if err := verify(clock.Now()); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("replayed code: %v", err)
	}
	clock.Add(5 * time.Minute)
	// One step of skew either way is accepted (a slow or fast phone clock).
	if err := verify(clock.Now().Add(-30 * time.Second)); err != nil {
		t.Fatalf("code of the previous step: %v", err)
	}
	clock.Add(5 * time.Minute)
	if err := verify(clock.Now().Add(30 * time.Second)); err != nil {
		t.Fatalf("code of the next step: %v", err)
	}
	// The step before that one is now older than the last accepted: refused.
	if err := verify(clock.Now()); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("code older than the last accepted one: %v", err)
	}
	clock.Add(5 * time.Minute)
	// Two steps off is too far.
	if err := verify(clock.Now().Add(-60 * time.Second)); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("code two steps old: %v", err)
	}
	if err := verify(clock.Now()); err != nil {
		t.Fatalf("current code after a refused one: %v", err)
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef", strings.Repeat("1", 5000)} {
		clock.Add(time.Minute) // keep under the throttle
		if err := svc.Credentials.VerifyTOTP(ctx, u, bad, "192.0.2.1", "test"); account.ErrorCode(err) != account.Invalid {
			t.Errorf("code %.10q: %v", bad, err)
		}
		svc.Credentials.VerifyTOTP(ctx, u, codeAt(t, secret, clock.Now()), "192.0.2.1", "test") // resets the throttle
	}

	// Failures are recorded in the history with the method.
	attempts, _ := db.ListLoginAttempts(ctx, u.ID, 50)
	failed := 0
	for _, a := range attempts {
		if a.Method == "otp" && !a.Success && a.Reason != "" {
			failed++
		}
	}
	if failed < 8 {
		t.Errorf("%d failed codes recorded, want at least 8", failed)
	}
}

func TestVerifyTOTPThrottle(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour) // 3 failures per minute
	ctx := context.Background()
	secret, _, u := enrol(t, svc, db, clock, newSecurityUser(t, svc, "alice"))
	clock.Add(30 * time.Second)
	good := codeAt(t, secret, clock.Now())
	bad := "000000"
	if bad == good {
		bad = "111111"
	}
	for range 3 {
		if err := svc.Credentials.VerifyTOTP(ctx, u, bad, "", ""); account.ErrorCode(err) != account.Invalid {
			t.Fatalf("wrong code: %v", err)
		}
	}
	if err := svc.Credentials.VerifyTOTP(ctx, u, good, "", ""); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("right code while throttled: %v", err)
	}
	// Recovery codes share the budget: guessing cannot switch doors.
	if err := svc.Credentials.UseRecoveryCode(ctx, u, "aaaaa-aaaaa", "", ""); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("recovery code while throttled: %v", err)
	}
	clock.Add(2 * time.Minute)
	if err := svc.Credentials.VerifyTOTP(ctx, u, codeAt(t, secret, clock.Now()), "", ""); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestVerifyTOTPConcurrentUseAcceptsOnce(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	secret, _, u := enrol(t, svc, db, clock, newSecurityUser(t, svc, "alice"))
	clock.Add(30 * time.Second)
	code := codeAt(t, secret, clock.Now())
	results := make([]error, 8)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = svc.Credentials.VerifyTOTP(ctx, u, code, "192.0.2.1", "test") })
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case account.ErrorCode(err) != account.Invalid && account.ErrorCode(err) != account.RateLimited:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent uses of one code succeeded", ok)
	}
}

func TestDisableTOTP(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	_, _, u := enrol(t, svc, db, clock, newSecurityUser(t, svc, "alice"))
	if err := svc.Credentials.DisableTOTP(ctx, u, "not my password", "", ""); err == nil {
		t.Fatal("disabled with a wrong password")
	}
	if err := svc.Credentials.DisableTOTP(ctx, u, "", "", ""); err == nil {
		t.Fatal("disabled without a password")
	}
	if after, _ := db.GetUser(ctx, u.ID); !account.HasTOTP(after) || len(after.RecoveryCodes) != account.RecoveryCodeCount {
		t.Fatal("a refused disable changed something")
	}
	if err := svc.Credentials.DisableTOTP(ctx, u, securityPassword, "", ""); err != nil {
		t.Fatal(err)
	}
	after, _ := db.GetUser(ctx, u.ID)
	if account.HasTOTP(after) || len(after.TOTPPending) != 0 || len(after.RecoveryCodes) != 0 || after.TOTPLastStep != 0 {
		t.Fatalf("after disable: %+v", after)
	}
	if has, _ := svc.Credentials.HasSecondFactor(ctx, after); has {
		t.Error("still has a second factor")
	}
}

func TestRecoveryCodesSingleUse(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	plain := newSecurityUser(t, svc, "bob")
	if _, err := svc.Credentials.RegenerateRecoveryCodes(ctx, plain); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("recovery codes without TOTP: %v", err)
	}
	_, codes, u := enrol(t, svc, db, clock, newSecurityUser(t, svc, "alice"))

	// Case, spaces and dashes do not matter.
	typed := " " + strings.ToUpper(strings.ReplaceAll(codes[0], "-", " - ")) + " "
	if err := svc.Credentials.UseRecoveryCode(ctx, u, typed, "192.0.2.1", "test"); err != nil {
		t.Fatalf("recovery code as typed: %v", err)
	}
	if err := svc.Credentials.UseRecoveryCode(ctx, u, codes[0], "192.0.2.1", "test"); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "recovery_code" {
		t.Fatalf("used recovery code again: %v", err)
	}
	if after, _ := db.GetUser(ctx, u.ID); len(after.RecoveryCodes) != account.RecoveryCodeCount-1 {
		t.Fatalf("%d codes left", len(after.RecoveryCodes))
	}
	// Another user's code is worth nothing here.
	_, otherCodes, _ := enrol(t, svc, db, clock, plain)
	if err := svc.Credentials.UseRecoveryCode(ctx, u, otherCodes[0], "", ""); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("another user's code: %v", err)
	}

	// Two concurrent uses of one code: exactly one wins.
	results := make([]error, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = svc.Credentials.UseRecoveryCode(ctx, u, codes[1], "", "") })
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 4 concurrent uses of one recovery code succeeded", ok)
	}

	clock.Add(2 * time.Minute) // past the throttle those failures caused
	fresh, err := svc.Credentials.RegenerateRecoveryCodes(ctx, u)
	if err != nil || len(fresh) != account.RecoveryCodeCount {
		t.Fatalf("regenerate: %d codes, %v", len(fresh), err)
	}
	if err := svc.Credentials.UseRecoveryCode(ctx, u, codes[2], "", ""); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("an old code after regeneration: %v", err)
	}
	if err := svc.Credentials.UseRecoveryCode(ctx, u, fresh[9], "", ""); err != nil {
		t.Fatalf("a new code: %v", err)
	}
	attempts, _ := db.ListLoginAttempts(ctx, u.ID, 20)
	recorded := false
	for _, a := range attempts {
		recorded = recorded || (a.Method == "recovery_code" && !a.Success)
	}
	if !recorded {
		t.Error("a wrong recovery code was not recorded")
	}
}

func TestHasSecondFactorCountsPasskeys(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	u := newSecurityUser(t, svc, "alice")
	if has, err := svc.Credentials.HasSecondFactor(ctx, u); has || err != nil {
		t.Fatalf("new user: %v %v", has, err)
	}
	// A remembered device is not a factor; a passkey is.
	if _, err := svc.Credentials.TrustDevice(ctx, u, "", ""); err != nil {
		t.Fatal(err)
	}
	if has, _ := svc.Credentials.HasSecondFactor(ctx, u); has {
		t.Fatal("a trusted device counts as a second factor")
	}
	if err := db.CreateCredential(ctx, storage.Credential{ID: "pk1", UserID: u.ID, Kind: storage.KindPasskey, Name: "Laptop", WebAuthnID: []byte{1, 2, 3}, CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if has, err := svc.Credentials.HasSecondFactor(ctx, u); !has || err != nil {
		t.Fatalf("with a passkey: %v %v", has, err)
	}
}

func TestChangePassword(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	u := newSecurityUser(t, svc, "alice")
	other := newSecurityUser(t, svc, "bob")

	var sessions []storage.Session
	for range 3 {
		_, s, err := svc.SignIn.StartSession(ctx, u, []string{"pwd"}, "192.0.2.1", "test")
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	_, bobSession, _ := svc.SignIn.StartSession(ctx, other, []string{"pwd"}, "", "")
	exp := clock.Now().Add(time.Hour)
	if err := db.CreateTokens(ctx, storage.AccessToken{ID: "at1", ClientID: "app", UserID: u.ID, Subject: u.ID, FamilyID: "f1", CreatedAt: clock.Now(), ExpiresAt: exp},
		&storage.RefreshToken{Hash: "rt1", ID: "r1", FamilyID: "f1", ClientID: "app", UserID: u.ID, CreatedAt: clock.Now(), ExpiresAt: exp, IdleExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateTokens(ctx, storage.AccessToken{ID: "at2", ClientID: "app", UserID: other.ID, Subject: other.ID, CreatedAt: clock.Now(), ExpiresAt: exp}, nil); err != nil {
		t.Fatal(err)
	}

	for name, c := range map[string]struct {
		current, next, field string
	}{
		"wrong current": {"not my password", "a brand new secret", "current_password"},
		"no current":    {"", "a brand new secret", "current_password"},
		"too short":     {securityPassword, "short", "new_password"},
		"username":      {securityPassword, "ALICE", "new_password"},
		"email":         {securityPassword, "alice@example.com", "new_password"},
		"too long":      {securityPassword, strings.Repeat("x", 2000), "new_password"},
	} {
		clock.Add(time.Minute) // each wrong password counts against the throttle
		err := svc.Credentials.ChangePassword(ctx, u, sessions[0].ID, c.current, c.next, "", "")
		if err == nil || account.ErrorField(err) != c.field {
			t.Errorf("%s: %v (field %q)", name, err, account.ErrorField(err))
		}
	}
	if after, _ := db.GetUser(ctx, u.ID); after.PasswordHash != u.PasswordHash || !after.PasswordChangedAt.IsZero() {
		t.Fatal("a refused change changed the password")
	}
	if left, _ := db.ListUserSessions(ctx, u.ID); len(left) != 3 {
		t.Fatalf("a refused change ended sessions: %d left", len(left))
	}

	clock.Add(time.Minute)
	if err := svc.Credentials.ChangePassword(ctx, u, sessions[0].ID, securityPassword, "a brand new secret", "", ""); err != nil {
		t.Fatal(err)
	}
	after, _ := db.GetUser(ctx, u.ID)
	if after.PasswordHash == u.PasswordHash || !after.PasswordChangedAt.Equal(clock.Now()) {
		t.Errorf("password not changed: changed at %v", after.PasswordChangedAt)
	}
	left, _ := db.ListUserSessions(ctx, u.ID)
	if len(left) != 1 || left[0].ID != sessions[0].ID {
		t.Errorf("sessions after the change: %+v, want only %s", left, sessions[0].ID)
	}
	if _, err := db.GetRefreshToken(ctx, "rt1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("refresh token survived: %v", err)
	}
	if _, err := db.GetAccessToken(ctx, "at1"); err == nil {
		t.Error("access token survived")
	}
	// Someone else's session and tokens are untouched.
	if _, err := db.GetSession(ctx, bobSession.ID); err != nil {
		t.Errorf("another user's session ended: %v", err)
	}
	if _, err := db.GetAccessToken(ctx, "at2"); err != nil {
		t.Errorf("another user's token revoked: %v", err)
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "a brand new secret"}); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: securityPassword}); err == nil {
		t.Error("old password still works")
	}
}

func TestTrustedDevices(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	ctx := context.Background()
	u := newSecurityUser(t, svc, "alice")
	bob := newSecurityUser(t, svc, "bob")
	ua := "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
	secret, err := svc.Credentials.TrustDevice(ctx, u, "192.0.2.1", ua)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := svc.Credentials.ListTrustedDevices(ctx, u)
	if len(list) != 1 || list[0].Hash == secret || list[0].Hash != account.HashSecret(secret) || list[0].UserAgent != ua {
		t.Fatalf("stored device: %+v", list)
	}
	if !list[0].ExpiresAt.Equal(clock.Now().Add(30 * 24 * time.Hour)) {
		t.Errorf("expires %v, want 30 days", list[0].ExpiresAt)
	}

	clock.Add(time.Hour)
	if !svc.Credentials.DeviceTrusted(ctx, u, secret, "192.0.2.9") {
		t.Fatal("the device is not trusted")
	}
	list, _ = svc.Credentials.ListTrustedDevices(ctx, u)
	if list[0].LastIP != "192.0.2.9" || !list[0].LastUsedAt.Equal(clock.Now()) || list[0].IP != "192.0.2.1" {
		t.Errorf("use not noted: %+v", list[0])
	}
	for name, ok := range map[string]bool{
		"another user":   svc.Credentials.DeviceTrusted(ctx, bob, secret, ""),
		"wrong secret":   svc.Credentials.DeviceTrusted(ctx, u, secret+"x", ""),
		"empty secret":   svc.Credentials.DeviceTrusted(ctx, u, "", ""),
		"huge secret":    svc.Credentials.DeviceTrusted(ctx, u, strings.Repeat("a", 10000), ""),
		"another's hash": svc.Credentials.DeviceTrusted(ctx, u, list[0].Hash, ""),
	} {
		if ok {
			t.Errorf("%s: trusted", name)
		}
	}

	// Forgetting: only one's own devices, only devices.
	bobSecret, _ := svc.Credentials.TrustDevice(ctx, bob, "", "")
	bobList, _ := svc.Credentials.ListTrustedDevices(ctx, bob)
	if err := svc.Credentials.ForgetDevice(ctx, u, bobList[0].ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("forget another user's device: %v", err)
	}
	if err := db.CreateCredential(ctx, storage.Credential{ID: "pk1", UserID: u.ID, Kind: storage.KindPasskey, WebAuthnID: []byte{9}, CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Credentials.ForgetDevice(ctx, u, "pk1"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("forget a passkey as a device: %v", err)
	}
	if err := svc.Credentials.ForgetDevice(ctx, u, list[0].ID); err != nil {
		t.Fatal(err)
	}
	if svc.Credentials.DeviceTrusted(ctx, u, secret, "") {
		t.Error("a forgotten device is still trusted")
	}
	if err := svc.Credentials.ForgetDevice(ctx, u, list[0].ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("forget twice: %v", err)
	}
	s1, _ := svc.Credentials.TrustDevice(ctx, u, "", "")
	s2, _ := svc.Credentials.TrustDevice(ctx, u, "", "")
	if n, err := svc.Credentials.ForgetAllDevices(ctx, u); n != 2 || err != nil {
		t.Fatalf("forget all: %d %v", n, err)
	}
	if svc.Credentials.DeviceTrusted(ctx, u, s1, "") || svc.Credentials.DeviceTrusted(ctx, u, s2, "") {
		t.Error("forget all left a device trusted")
	}
	if _, err := db.GetCredential(ctx, u.ID, "pk1"); err != nil {
		t.Error("forget all removed a passkey")
	}
	if !svc.Credentials.DeviceTrusted(ctx, bob, bobSecret, "") {
		t.Error("forgetting alice's devices forgot bob's")
	}

	// Trust ends with the lifetime.
	clock.Add(31 * 24 * time.Hour)
	if svc.Credentials.DeviceTrusted(ctx, bob, bobSecret, "") {
		t.Error("an expired device is still trusted")
	}
}

func TestTrustedDevicesOff(t *testing.T) {
	clock := newTestClock()
	svc, _ := newSecurityService(t, clock, 0)
	ctx := context.Background()
	u := newSecurityUser(t, svc, "alice")
	if _, err := svc.Credentials.TrustDevice(ctx, u, "", ""); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("trust a device with the option off: %v", err)
	}
	if svc.Credentials.DeviceTrusted(ctx, u, "anything", "") {
		t.Fatal("a device is trusted with the option off")
	}
}
