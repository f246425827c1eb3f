package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// TestUpstreamUsernameSpelledOut: letters without a decomposition are
// spelled out ("Søren Weiß" gives "soren-weiss"); a claim with nothing
// usable falls back to the email only when the upstream says it is
// verified.
func TestUpstreamUsernameSpelledOut(t *testing.T) {
	rename := func(srv *testServer, name string, verified bool) {
		t.Helper()
		if _, err := srv.Main.Store.UpdateUser(context.Background(), userIDOf(t, srv, "ursula"), func(u storage.User) (storage.User, error) {
			u.Name, u.EmailVerified = name, verified
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	up, down := upstreamPair(t, func(d *config.Directory) { d.UsernameClaim = "name" })
	rename(up, "Søren Weiß", false)
	b := newBrowser(t)
	if p := signInUpstream(t, down, b, b.get(down.URL+"/login")); p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("sign-in as Søren Weiß: %d %s", p.Status, truncateBody(p.Body))
	}
	if _, err := down.Main.Store.GetUserByLogin(context.Background(), "soren-weiss"); err != nil {
		t.Errorf("no account soren-weiss: %v", err)
	}

	up2, down2 := upstreamPair(t, func(d *config.Directory) { d.UsernameClaim = "name" })
	rename(up2, "李雷", false)
	b2 := newBrowser(t)
	if p := signInUpstream(t, down2, b2, b2.get(down2.URL+"/login")); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "no usable username") {
		t.Errorf("no usable name and an unverified email: %d %s", p.Status, truncateBody(p.Body))
	}
	rename(up2, "李雷", true)
	b3 := newBrowser(t)
	if p := signInUpstream(t, down2, b3, b3.get(down2.URL+"/login")); p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("no usable name and a verified email: %d %s", p.Status, truncateBody(p.Body))
	}
	if u, err := down2.Main.Store.GetUserByLogin(context.Background(), "ursula"); err != nil || u.Source != "up" {
		t.Errorf("account from the verified email: %v %+v", err, u)
	}
}

// TestUpstreamSignInsOnActivityPage: the activity page names sign-ins
// through an upstream provider in words, English and German, and a refused
// one is recorded with the same method as one that succeeded.
func TestUpstreamSignInsOnActivityPage(t *testing.T) {
	_, down := upstreamPair(t, nil)
	ctx := context.Background()
	b := newBrowser(t)
	signInUpstream(t, down, b, b.get(down.URL+"/login"))
	if err := down.Main.Accounts.Users.SetBlocked(ctx, "ursula", true); err != nil {
		t.Fatal(err)
	}
	blocked := newBrowser(t)
	if p := signInUpstream(t, down, blocked, blocked.get(down.URL+"/login")); p.Status != http.StatusForbidden {
		t.Fatalf("sign-in of a blocked upstream user: %d", p.Status)
	}
	if err := down.Main.Accounts.Users.SetBlocked(ctx, "ursula", false); err != nil {
		t.Fatal(err)
	}
	hist, err := down.Main.Accounts.SignIn.History(ctx, userIDOf(t, down, "ursula"), 10)
	if err != nil || len(hist) != 2 || hist[0].Success || !hist[1].Success || hist[0].Method != hist[1].Method || hist[0].Method != "fed+pwd" {
		t.Fatalf("history of one upstream sign-in and one refused: %v %+v", err, hist)
	}

	b = newBrowser(t)
	signInUpstream(t, down, b, b.get(down.URL+"/login"))
	p := b.get(down.URL + "/security/activity")
	if n := strings.Count(p.Body, "Upstream provider (password)"); n != 3 || strings.Contains(p.Body, ">fed") {
		t.Errorf("the activity page names %d of 3 upstream sign-ins: %s", n, truncateBody(p.Body))
	}
	req, _ := http.NewRequest(http.MethodGet, down.URL+"/security/activity", nil)
	req.Header.Set("Accept-Language", "de")
	if p := b.do(req); !strings.Contains(p.Body, "Vorgeschalteter Anbieter (Passwort)") {
		t.Errorf("German activity page: %s", truncateBody(p.Body))
	}
}
