package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// TestUpstreamSignInAsksSecondFactor: with require_2fa, a person signing in
// through an upstream provider is made to enrol a second factor here, and
// from then on shows it after the upstream's sign-in, as after a password;
// the app's ID token says both (fed, the upstream's pwd, otp, mfa). A
// wrong code leaves no session.
func TestUpstreamSignInAsksSecondFactor(t *testing.T) {
	down := startUpstreamRig(t, nil, func(c *config.Config) { c.Accounts.Require2FA = true }).down
	rp := down.createClient(account.NewClient{ID: "app", SkipConsent: true})

	b := newBrowser(t)
	if p := signInUpstream(t, down, b, rp.authorize(b, "st-enrol")); p.URL.Path != "/security" {
		t.Fatalf("first upstream sign-in with require_2fa lands on %s, want the enrolment page", p.URL)
	}
	secret, _ := enrolTOTP(t, down, b)

	b2 := newBrowser(t)
	p := signInUpstream(t, down, b2, rp.authorize(b2, "st-2fa"))
	if p.URL.Path != "/login/2fa" || !strings.Contains(p.Body, `name="code"`) {
		t.Fatalf("the upstream sign-in of someone with TOTP here lands on %s: %s", p.URL, truncateBody(p.Body))
	}
	if r := b2.get(down.URL + "/profile"); !isLoginPage(r) {
		t.Fatal("a session exists before the second factor")
	}
	if r := b2.submit(p, "/login/2fa", url.Values{"code": {"000000"}}); r.Status != http.StatusBadRequest {
		t.Errorf("wrong code: %d", r.Status)
	}
	p = b2.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}})
	res := landed(t, p, rp.RedirectURI)
	if res.Code == "" {
		t.Fatalf("no code after the second factor: %d %s", p.Status, truncateBody(p.Body))
	}
	tok, err := rp.exchange(res.Code, "")
	if err != nil {
		t.Fatal(err)
	}
	amr, _ := idTokenClaims(t, rp, tok)["amr"].([]any)
	if !slices.Equal(amr, []any{"fed", "pwd", "otp", "mfa"}) {
		t.Errorf("amr of an upstream sign-in with a second factor here: %v", amr)
	}

	// The portal alone (no app) asks the same.
	b3 := newBrowser(t)
	if p := signInUpstream(t, down, b3, b3.get(down.URL+"/login")); p.URL.Path != "/login/2fa" {
		t.Errorf("upstream sign-in to the portal lands on %s", p.URL)
	}
	hist, err := down.Main.Accounts.SignIn.History(context.Background(), userIDOf(t, down, "ursula"), 20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(hist, func(a storage.LoginAttempt) bool { return a.Success && a.Method == "fed+pwd+otp" }) {
		t.Errorf("no successful sign-in with the upstream and a code in the history: %+v", hist)
	}
}

// TestUpstreamHandlesSecondFactor: handles_second_factor on an upstream
// provider exempts its users from require_2fa, as for an LDAP directory:
// they go straight to the app and are offered no enrolment.
func TestUpstreamHandlesSecondFactor(t *testing.T) {
	down := startUpstreamRig(t, func(d *config.Directory) { d.HandlesSecondFactor = true }, func(c *config.Config) { c.Accounts.Require2FA = true }).down
	rp := down.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	p := signInUpstream(t, down, b, rp.authorize(b, "st"))
	if res := landed(t, p, rp.RedirectURI); res.Code == "" {
		t.Fatalf("an upstream that handles second factors: landed on %s %s", p.URL, truncateBody(p.Body))
	}
	s := b.get(down.URL + "/security")
	if !strings.Contains(s.Body, `id="second-factor-by-directory"`) || hasForm(s.Body, "/security/totp/begin") {
		t.Errorf("security page of an upstream user whose provider handles second factors: %s", truncateBody(s.Body))
	}
}
