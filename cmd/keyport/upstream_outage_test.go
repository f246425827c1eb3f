package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// upstreamRig is an upstream Keyport with one user, ursula, and a
// downstream Keyport that lists it as a directory ("up"), logs to a buffer
// and runs on a clock the test moves.
type upstreamRig struct {
	t        *testing.T
	up, down *testServer
	downLogs *testlog.Buffer
	clock    *testclock.Clock // runs, so that the downstream's refresh schedule can be passed without waiting
}

// startUpstreamRig starts the two servers; mutate may change the
// downstream's directory entry, and mutateDown the rest of its
// configuration.
func startUpstreamRig(t *testing.T, mutate func(*config.Directory), mutateDown func(*config.Config)) *upstreamRig {
	t.Helper()
	rig := &upstreamRig{t: t, downLogs: &testlog.Buffer{}, clock: testclock.Running()}
	// Cookies ignore ports: on one loopback host the two servers need
	// cookies of their own names.
	rig.up = startServer(t, "", func(c *config.Config) { c.Session.CookieName = "upstream_session" })
	rig.up.createUser("ursula", false)
	rig.down = startServerWith(t, serverOptions{logs: rig.downLogs, now: rig.clock.Now, mutate: func(c *config.Config) {
		callback := c.Issuer + "/login/upstream/callback"
		_, secret, err := rig.up.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "downstream", SkipConsent: true, RedirectURIs: []string{callback}})
		if err != nil {
			t.Fatal(err)
		}
		d := config.Directory{ID: "up", Name: "Upstream Keyport", Type: "oidc", Issuer: rig.up.URL, ClientID: "downstream", ClientSecret: secret, CreateUsers: true}
		if mutate != nil {
			mutate(&d)
		}
		c.Directories = []config.Directory{d}
		if mutateDown != nil {
			mutateDown(c)
		}
	}})
	return rig
}

// restartUpstream starts the stopped upstream again on its address and data.
func (r *upstreamRig) restartUpstream() {
	r.t.Helper()
	r.up = r.up.restart()
}

// press presses the upstream's button on the downstream's sign-in page.
func (r *upstreamRig) press(b *browser) page {
	r.t.Helper()
	return b.submit(b.get(r.down.URL+"/login"), "/login/upstream/up", nil)
}

const outageLine = "upstream OpenID provider cannot be reached"

// TestUpstreamOutageAfterSignIn: after a sign-in through the upstream, the
// upstream goes down. The button then shows Keyport's 503 page (not a
// redirect to the dead upstream), the outage is logged once at WARN however
// often it is pressed, and once the upstream is back and the retry time has
// come, signing in works again and the recovery is logged.
func TestUpstreamOutageAfterSignIn(t *testing.T) {
	rig := startUpstreamRig(t, nil, nil)
	b := newBrowser(t)
	if p := signInUpstream(t, rig.down, b, b.get(rig.down.URL+"/login")); p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("first sign-in: %d %s", p.Status, p.URL)
	}

	rig.up.stop()
	rig.clock.Add(6 * time.Second) // past the discovery check interval
	for i := range 3 {
		p := rig.press(newBrowser(t))
		if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "Upstream Keyport cannot be reached right now") {
			t.Fatalf("press %d with the upstream down: %d at %s %s", i, p.Status, p.URL, truncateBody(p.Body))
		}
	}
	if n := rig.downLogs.Count("level=WARN", outageLine, "directory=up"); n != 1 {
		t.Errorf("the outage was logged %d times at WARN, want once:\n%s", n, rig.downLogs)
	}

	// Back up, but before the retry time: still the outage page, and no
	// new line. After it: the button works again.
	rig.restartUpstream()
	if p := rig.press(newBrowser(t)); p.Status != http.StatusServiceUnavailable {
		t.Errorf("press before the retry time: %d", p.Status)
	}
	rig.clock.Add(6 * time.Second)
	ub := newBrowser(t)
	if p := signInUpstream(t, rig.down, ub, ub.get(rig.down.URL+"/login")); p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Errorf("sign-in after the upstream came back: %d %s", p.Status, p.URL)
	}
	if n := rig.downLogs.Count("level=INFO", "upstream OpenID provider reachable again", "directory=up"); n != 1 {
		t.Errorf("the recovery was logged %d times:\n%s", n, rig.downLogs)
	}
	if n := rig.downLogs.Count(outageLine); n != 1 {
		t.Errorf("%d outage lines after the recovery, want 1", n)
	}
}

// TestUpstreamDiesBeforeCallback: the upstream signs the person in and
// dies before Keyport exchanges the code. That is an outage (503, WARN),
// not a refused sign-in (401 "could not be verified", INFO).
func TestUpstreamDiesBeforeCallback(t *testing.T) {
	rig := startUpstreamRig(t, nil, nil)
	b := newBrowser(t)
	b.client.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(req.URL.Path, "/login/upstream/callback") {
			return http.ErrUseLastResponse // stop before the downstream's callback
		}
		return nil
	}
	at := rig.press(b)
	p := b.submit(at, "/login", url.Values{"login": {"ursula"}, "password": {testPassword}})
	callback := p.Location
	if !strings.HasPrefix(callback, rig.down.URL+"/login/upstream/callback?") {
		t.Fatalf("the upstream did not send the browser back: %d %q", p.Status, callback)
	}
	rig.up.stop()
	p = b.get(callback)
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "cannot be reached") || strings.Contains(p.Body, "could not be verified") {
		t.Errorf("callback with the upstream gone: %d %s", p.Status, truncateBody(p.Body))
	}
	if n := rig.downLogs.Count("level=WARN", outageLine); n != 1 {
		t.Errorf("outage lines: %d\n%s", n, rig.downLogs)
	}
	if n := rig.downLogs.Count("upstream sign-in refused"); n != 0 {
		t.Errorf("the outage was logged as a refused sign-in:\n%s", rig.downLogs)
	}
	// A refused exchange (the same code again, the upstream up) stays a
	// refusal: the attempt was used up, so it never reaches the upstream;
	// a forged code does, and is refused by it.
	rig.restartUpstream()
	rig.clock.Add(6 * time.Second)
	fb := newBrowser(t)
	fb.client.CheckRedirect = b.client.CheckRedirect
	at = rig.press(fb)
	p = fb.submit(at, "/login", url.Values{"login": {"ursula"}, "password": {testPassword}})
	forged, _ := url.Parse(p.Location)
	q := forged.Query()
	q.Set("code", "forged-"+q.Get("code"))
	forged.RawQuery = q.Encode()
	if r := fb.get(forged.String()); r.Status != http.StatusUnauthorized || !strings.Contains(r.Body, "could not be verified") {
		t.Errorf("forged code: %d %s", r.Status, truncateBody(r.Body))
	}
	if n := rig.downLogs.Count("level=INFO", "upstream sign-in refused"); n != 1 {
		t.Errorf("the refusal was not logged as one:\n%s", rig.downLogs)
	}
}

// TestUpstreamUsernameDerived: upstream names that are not Keyport
// usernames ("ulla@example.org", "Zoë Tester") become valid, unique ones,
// and the log says what was done.
func TestUpstreamUsernameDerived(t *testing.T) {
	// The username claim is the email: "ursula@example.com" becomes
	// "ursula", or "ursula-2" when a local account has that name.
	rig := startUpstreamRig(t, func(d *config.Directory) { d.UsernameClaim = "email" }, nil)
	rig.down.createUser("ursula", false)
	if _, err := rig.down.Main.Store.UpdateUser(context.Background(), userIDOf(t, rig.down, "ursula"), func(u storage.User) (storage.User, error) {
		u.Email = "someone-else@example.com"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	if p := signInUpstream(t, rig.down, b, b.get(rig.down.URL+"/login")); p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("sign-in with an email as the username claim: %d %s %s", p.Status, p.URL, truncateBody(p.Body))
	}
	u, err := rig.down.Main.Store.GetUserByLogin(context.Background(), "ursula-2")
	if err != nil || u.Source != "up" || u.Email != "ursula@example.com" {
		t.Fatalf("derived account: %v %+v", err, u)
	}
	if n := rig.downLogs.Count("username derived for an upstream account", "username_claim=ursula@example.com", "username=ursula-2"); n != 1 {
		t.Errorf("no log line says how the username was made:\n%s", rig.downLogs)
	}
	// The next sign-in keeps the name.
	b2 := newBrowser(t)
	signInUpstream(t, rig.down, b2, b2.get(rig.down.URL+"/login"))
	if again, err := rig.down.Main.Store.GetUserByLogin(context.Background(), "ursula-2"); err != nil || again.ID != u.ID {
		t.Errorf("second sign-in: %v %+v", err, again)
	}

	// The username claim is the display name, with an accent.
	rig2 := startUpstreamRig(t, func(d *config.Directory) { d.UsernameClaim = "name" }, nil)
	if _, err := rig2.up.Main.Store.UpdateUser(context.Background(), userIDOf(t, rig2.up, "ursula"), func(u storage.User) (storage.User, error) {
		u.Name = "Zoë Tester"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	b3 := newBrowser(t)
	if p := signInUpstream(t, rig2.down, b3, b3.get(rig2.down.URL+"/login")); p.Status != http.StatusOK {
		t.Fatalf("sign-in with an accented name as the username claim: %d %s", p.Status, truncateBody(p.Body))
	}
	if _, err := rig2.down.Main.Store.GetUserByLogin(context.Background(), "zoe-tester"); err != nil {
		t.Errorf("no account zoe-tester: %v", err)
	}
}

// TestUpstreamAMR: the ID token of a sign-in through an upstream says so
// ("fed", RFC 8176), followed by the upstream's own amr values.
func TestUpstreamAMR(t *testing.T) {
	rig := startUpstreamRig(t, nil, nil)
	rp := rig.down.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	res := landed(t, signInUpstream(t, rig.down, b, rp.authorize(b, "st-amr")), rp.RedirectURI)
	tok, err := rp.exchange(res.Code, "")
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	amr, _ := claims["amr"].([]any)
	if len(amr) != 2 || amr[0] != "fed" || amr[1] != "pwd" {
		t.Errorf("amr of an upstream sign-in: %v", claims["amr"])
	}
	// A session that answers the next app carries the same.
	res = landed(t, rp.authorize(b, "st-sso"), rp.RedirectURI)
	tok, err = rp.exchange(res.Code, "")
	if err != nil {
		t.Fatal(err)
	}
	if amr, _ := idTokenClaims(t, rp, tok)["amr"].([]any); len(amr) == 0 || amr[0] != "fed" {
		t.Errorf("amr after single sign-on: %v", amr)
	}
}
