package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
)

// Back-channel logout end to end, through the outbox: a receiver on
// loopback checks each logout token's signature against the JWKS; signing
// out in the browser tells both apps the browser used (each with that
// session's sid), and an admin blocking the user tells the app of their
// other session, and no app twice.
func TestBackChannelLogoutThroughOutbox(t *testing.T) {
	srv := startServer(t, "", nil)
	lena := srv.createUser("lena", false)
	root := srv.createUser("root", true)
	ctx := context.Background()
	keys := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys")

	type logout struct{ aud, sub, sid string }
	got := make(chan logout, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := keys.VerifySignature(r.Context(), r.PostFormValue("logout_token"))
		if err != nil {
			t.Errorf("a logout token that does not verify: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var c struct {
			Aud, Sub, Sid string
			Events        map[string]any
		}
		if err := json.Unmarshal(payload, &c); err != nil || c.Events["http://schemas.openid.net/event/backchannel-logout"] == nil {
			t.Errorf("logout token claims: %s (%v)", payload, err)
		}
		got <- logout{c.Aud, c.Sub, c.Sid}
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	withSID := srv.createClient(account.NewClient{ID: "bc-sid", SkipConsent: true, BackchannelLogoutURI: recv.URL + "/sid", BackchannelLogoutSessionRequired: true})
	plain := srv.createClient(account.NewClient{ID: "bc-plain", SkipConsent: true, BackchannelLogoutURI: recv.URL + "/plain"})

	signIn := func(b *browser, app *testClient) string {
		t.Helper()
		code, verifier := app.signIn(b, "lena")
		tok, err := app.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		return sidOf(t, app, tok.Extra("id_token").(string))
	}
	collect := func(n int) []logout {
		t.Helper()
		var out []logout
		for range n {
			select {
			case l := <-got:
				out = append(out, l)
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d logout tokens arrived: %+v", len(out), n, out)
			}
		}
		slices.SortFunc(out, func(a, b logout) int { return strings.Compare(a.aud, b.aud) })
		return out
	}

	// Signing out in the browser tells both apps of that session.
	b := newBrowser(t)
	sid := signIn(b, withSID)
	if again := signIn(b, plain); again != sid {
		t.Fatalf("one browser, two sids: %q %q", sid, again)
	}
	b.submit(b.get(srv.URL+"/logout"), "/logout", nil)
	want := []logout{{"bc-plain", lena.ID, sid}, {"bc-sid", lena.ID, sid}}
	if l := collect(2); !slices.Equal(l, want) {
		t.Errorf("after signing out: %+v, want %+v", l, want)
	}

	// Blocking the user ends their other browser's session: the app that
	// got tokens there hears of it.
	b2 := newBrowser(t)
	sid2 := signIn(b2, withSID)
	if _, err := srv.Main.Accounts.Admin.BlockUser(ctx, account.Actor{Kind: account.ActorUser, UserID: root.ID}, lena.ID); err != nil {
		t.Fatal(err)
	}
	if l := collect(1); l[0] != (logout{"bc-sid", lena.ID, sid2}) {
		t.Errorf("after blocking: %+v", l)
	}
	select {
	case l := <-got:
		t.Errorf("an extra logout token: %+v", l)
	case <-time.After(300 * time.Millisecond):
	}
}
