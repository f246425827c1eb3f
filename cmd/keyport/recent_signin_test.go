package main

import (
	"context"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/portal"
	"github.com/keyport/keyport/storage"
)

// reauthNeeded is what a security change says to a session that is not
// recent when the form has no password.
const reauthNeeded = "For your security, enter your current password to make this change."

// Every route the portal registers at its recent-sign-in level refuses a
// session past recent_auth whose form carries no password, and changes
// nothing. The routes come from the portal's own table, so a new one
// fails here until it has a case.
func TestRecentSignInRoutesRefuseAStaleSession(t *testing.T) {
	clock := testclock.At(time.Now())
	srv := startServerWith(t, serverOptions{localhost: true, now: clock.Now})
	alice := srv.createUser("alice", false) // an authenticator app and a passkey
	bob := srv.createUser("bob", false)     // an authenticator app begun, not confirmed
	a := newBrowser(t)
	signInPortal(t, srv, a, "alice")
	enrolTOTPAt(t, srv, a, clock.Now())
	registerPasskey(t, srv, a, newPasskeyDevice(t, srv.URL), "Laptop")
	passkey := srv.passkeys(alice.ID)[0].ID
	b := newBrowser(t)
	signInPortal(t, srv, b, "bob")
	if begun := postPage(b, b.get(srv.URL+"/security"), "/security/totp/begin", url.Values{}); totpSecret(t, begun.Body) == "" {
		t.Fatalf("bob's enrolment page: %d %s", begun.Status, truncateBody(begun.Body))
	}
	hook, _, err := srv.Main.Accounts.Webhooks.Create(context.Background(), account.Actor{Kind: account.ActorUser, UserID: alice.ID}, true, account.NewWebhook{URL: "https://hooks.example.com/alice"})
	if err != nil {
		t.Fatal(err)
	}
	stale := srv.Main.Config.Accounts.RecentAuth.Duration + time.Minute
	clock.Add(stale)

	// post sends form to path with the CSRF token of the browser's session.
	post := func(br *browser, path string, form url.Values) page {
		form.Set("csrf_token", csrfOf(t, br, srv.URL+"/security"))
		return br.post(srv.URL+path, form)
	}
	// Each case tries its route with everything but a recent sign-in or
	// the password, and returns the status and what the answer says.
	type attempt struct {
		says string // the refusal: reauthNeeded, or for the changes that
		// need the password always, their own words
		try func() (int, string)
	}
	onPage := func(p page) (int, string) { return p.Status, p.Body }
	const wrongPassword = "The current password is not correct."
	cases := map[string]attempt{
		"POST /security/password": {wrongPassword, func() (int, string) {
			return onPage(post(a, "/security/password", url.Values{"new_password": {"a brand new passphrase 42"}, "new_password_confirm": {"a brand new passphrase 42"}}))
		}},
		"POST /security/totp/begin": {reauthNeeded, func() (int, string) { return onPage(post(b, "/security/totp/begin", url.Values{})) }},
		"POST /security/totp/confirm": {reauthNeeded, func() (int, string) {
			// The secret of the enrolment in progress, as the page shows it.
			secret := totpSecret(t, b.get(srv.URL+"/security").Body)
			if secret == "" {
				t.Fatal("bob's enrolment is no longer in progress")
			}
			return onPage(post(b, "/security/totp/confirm", url.Values{"code": {totpCode(t, secret, clock.Now())}}))
		}},
		"POST /security/totp/disable": {wrongPassword, func() (int, string) { return onPage(post(a, "/security/totp/disable", url.Values{})) }},
		"POST /security/recovery-codes": {reauthNeeded, func() (int, string) {
			confirm := a.get(srv.URL + "/security/recovery-codes")
			return onPage(submitForm(t, a, confirm, "/security/recovery-codes", nil))
		}},
		"POST /security/passkeys/remove": {reauthNeeded, func() (int, string) {
			confirm := a.get(srv.URL + "/security/passkeys/remove?id=" + url.QueryEscape(passkey))
			return onPage(submitForm(t, a, confirm, "/security/passkeys/remove", nil))
		}},
		"POST /security/passkeys/register/begin": {reauthNeeded, func() (int, string) {
			status, out := passkeyPost(t, a, srv.URL+"/security/passkeys/register/begin", csrfOf(t, a, srv.URL+"/security/passkeys"), map[string]string{"name": "Phone"})
			msg, _ := out["message"].(string)
			return status, msg
		}},
		"POST /security/app-passwords": {reauthNeeded, func() (int, string) {
			return onPage(post(a, "/security/app-passwords", url.Values{"ap_name": {"mail"}}))
		}},
		"POST /security/api-tokens": {reauthNeeded, func() (int, string) {
			return onPage(post(a, "/security/api-tokens", url.Values{"name": {"script"}, "scope": {account.ScopeReadOnly}}))
		}},
		"POST /security/allowlist": {reauthNeeded, func() (int, string) {
			return onPage(post(a, "/security/allowlist", url.Values{"allowed_networks": {"127.0.0.0/8"}}))
		}},
		"POST /security/webhooks": {reauthNeeded, func() (int, string) {
			return onPage(post(a, "/security/webhooks", url.Values{"url": {"https://hooks.example.com/in"}}))
		}},
		"POST /security/webhooks/{id}/rotate-secret": {reauthNeeded, func() (int, string) {
			return onPage(post(a, "/security/webhooks/"+hook.ID+"/rotate-secret", url.Values{"confirm": {"yes"}}))
		}},
	}

	routes := srv.Main.Portal.RecentSignInRoutes()
	for name := range cases {
		if !slices.ContainsFunc(routes, func(r portal.Route) bool { return r.Method+" "+r.Path == name }) {
			t.Errorf("%s is no longer registered as needing a recent sign-in (the portal lists %v)", name, routes)
		}
	}
	for _, r := range routes {
		name := r.Method + " " + r.Path
		c, ok := cases[name]
		if !ok {
			t.Errorf("%s needs a recent sign-in but has no case here: add one", name)
			continue
		}
		before := [2]securityState{stateOf(t, srv, alice.ID), stateOf(t, srv, bob.ID)}
		status, says := c.try()
		if status < 400 || status > 499 || !strings.Contains(says, c.says) {
			t.Errorf("%s without a recent sign-in or the password: %d, not refused with %q:\n%s", name, status, c.says, truncateBody(says))
		}
		if after := [2]securityState{stateOf(t, srv, alice.ID), stateOf(t, srv, bob.ID)}; !reflect.DeepEqual(before, after) {
			t.Errorf("%s changed what it guards:\nbefore %+v\nafter  %+v", name, before, after)
		}
	}

	// The control: with the sign-in recent again, the same requests go
	// through, so what refused them above was the missing recent sign-in.
	clock.Add(-stale)
	for _, r := range routes {
		name := r.Method + " " + r.Path
		if c, ok := cases[name]; ok && c.says == reauthNeeded {
			if status, says := c.try(); status >= 400 {
				t.Errorf("%s with a recent sign-in: %d\n%s", name, status, truncateBody(says))
			}
		}
	}
}

// securityState is what a security change can change.
type securityState struct {
	PasswordHash               string
	TOTPSecret, TOTPPending    []byte
	RecoveryCodes, AllowedNets []string
	Credentials                map[string][]string // kind: IDs
	Webhooks                   map[string]string   // ID: sealed secret
}

func stateOf(t *testing.T, srv *testServer, userID string) securityState {
	t.Helper()
	u := srv.user(userID)
	st := securityState{PasswordHash: u.PasswordHash, TOTPSecret: u.TOTPSecret, TOTPPending: u.TOTPPending,
		RecoveryCodes: u.RecoveryCodes, AllowedNets: u.AllowedNetworks, Credentials: map[string][]string{}}
	for _, kind := range []string{storage.KindPasskey, storage.KindAppPassword, storage.KindAPIToken} {
		cs, err := srv.Main.Store.ListCredentials(context.Background(), userID, kind)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			st.Credentials[kind] = append(st.Credentials[kind], c.ID)
		}
	}
	hooks, err := srv.Main.Store.ListWebhooksOf(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	st.Webhooks = map[string]string{}
	for _, h := range hooks {
		st.Webhooks[h.ID] = string(h.SealedSecret)
	}
	return st
}
