package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

// ageSessions moves every session of userID past the recent-sign-in window.
func ageSessions(t *testing.T, srv *testServer, userID string) {
	t.Helper()
	ctx := context.Background()
	sess, err := srv.Main.Store.ListUserSessions(ctx, userID)
	if err != nil || len(sess) == 0 {
		t.Fatalf("sessions of %s: %v (%d)", userID, err, len(sess))
	}
	for _, s := range sess {
		s.AuthTime = s.AuthTime.Add(-time.Hour)
		if err := srv.Main.Store.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := srv.Main.Store.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTOTPEnrolmentNeedsRecentSignIn: adding an authenticator app is a
// security change like adding a passkey. A session that signed in long ago
// (a browser left open, a stolen cookie) must give the password again, both
// to begin and to turn on the enrolment.
func TestTOTPEnrolmentNeedsRecentSignIn(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	ageSessions(t, srv, alice.ID)

	p := b.get(srv.URL + "/security")
	if !strings.Contains(p.Body, `id="confirm_password_totp"`) {
		t.Errorf("the set-up form of an old session has no password field: %s", truncateBody(p.Body))
	}
	r := postPage(b, p, "/security/totp/begin", url.Values{})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "current password") {
		t.Errorf("begin without the password: %d %s", r.Status, truncateBody(r.Body))
	}
	if u := srv.user(alice.ID); len(u.TOTPPending) != 0 {
		t.Fatal("begin without the password stored a pending secret")
	}
	if r := postPage(b, p, "/security/totp/begin", url.Values{"confirm_password": {"not the password"}}); r.Status != http.StatusBadRequest || len(srv.user(alice.ID).TOTPPending) != 0 {
		t.Errorf("begin with a wrong password: %d", r.Status)
	}
	r = postPage(b, p, "/security/totp/begin", url.Values{"confirm_password": {testPassword}})
	m := totpSecretPattern.FindStringSubmatch(r.Body)
	if r.Status != http.StatusOK || m == nil {
		t.Fatalf("begin with the password: %d %s", r.Status, truncateBody(r.Body))
	}
	if !strings.Contains(r.Body, `id="confirm_password_totp_on"`) {
		t.Error("the confirmation form of an old session has no password field")
	}
	code := url.Values{"code": {totpCode(t, m[1], time.Now())}}
	if r := postPage(b, r, "/security/totp/confirm", code); r.Status != http.StatusBadRequest || account.HasTOTP(srv.user(alice.ID)) {
		t.Errorf("confirm without the password: %d, TOTP on: %v", r.Status, account.HasTOTP(srv.user(alice.ID)))
	}
	code.Set("confirm_password", testPassword)
	if done := postPage(b, r, "/security/totp/confirm", code); done.Status != http.StatusOK || !account.HasTOTP(srv.user(alice.ID)) {
		t.Errorf("confirm with the password: %d %s", done.Status, truncateBody(done.Body))
	}

	// A fresh sign-in needs no password: the window of passkeys applies.
	bob := srv.createUser("bob", false)
	fb := newBrowser(t)
	signInPortal(t, srv, fb, "bob")
	enrolTOTP(t, srv, fb)
	if !account.HasTOTP(srv.user(bob.ID)) {
		t.Error("a recent sign-in could not set up TOTP")
	}
}
