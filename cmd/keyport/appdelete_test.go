package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// TestDeletedAppLeavesNothing: alice consents to wiki and gets tokens
// through a real code flow; her next sign-in goes straight back to the app.
// An admin deletes wiki through the management API, and another app
// registers under the same ID: alice is asked for her consent again, and
// none of the first wiki's tokens or app passwords is on record any more.
func TestDeletedAppLeavesNothing(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv) // creates alice
	alice, err := srv.Main.Store.GetUserByLogin(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob := srv.createUser("bob", false)
	ctx := context.Background()
	wiki := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki"})
	chat := srv.createClient(account.NewClient{ID: "chat", Name: "Team Chat"})
	for _, c := range []*testClient{wiki, chat} {
		c.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	}
	first := wiki.tokens("alice")
	chatTok := chat.tokens("alice")
	bobTok := wiki.tokens("bob")
	if err := srv.Main.Store.CreateCredential(ctx, storage.Credential{ID: "pw1", UserID: alice.ID, Kind: storage.KindAppPassword, Name: "wiki sync", Hash: account.HashSecret("app-password-0123456789"), ClientID: "wiki", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	if p := wiki.authorize(b, "known"); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, wiki.RedirectURI) {
		t.Fatalf("wiki's sign-in with alice's consent on record: %d %s, want straight back to wiki", p.Status, p.Location)
	}

	if status, _, body := apiCall(t, srv, http.MethodDelete, "/api/v1/clients/wiki", rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("delete wiki: %d %v", status, body)
	}
	again := srv.createClient(account.NewClient{ID: "wiki", Name: "Another Wiki"})
	again.oauth.Scopes = wiki.oauth.Scopes
	if p := again.authorize(b, "again"); !isConsentPage(p) {
		t.Errorf("the new wiki's sign-in: %d at %s %s, want the consent page (the old wiki's consent must not carry over)\n%s", p.Status, p.URL, p.Location, truncateBody(p.Body))
	}
	for _, who := range []string{alice.ID, bob.ID} {
		if _, err := srv.Main.Store.GetGrant(ctx, who, "wiki"); err == nil {
			t.Errorf("a consent to the deleted wiki is still on record (user %s)", who)
		}
	}
	if n, err := srv.Main.Store.RevokeUserClient(ctx, alice.ID, "wiki"); err != nil || n != 0 {
		t.Errorf("alice's tokens of the deleted wiki left on record: %d %v", n, err)
	}
	if _, err := srv.Main.Store.GetCredential(ctx, alice.ID, "pw1"); err == nil {
		t.Error("alice's app password for the deleted wiki is still on record")
	}
	// The old refresh tokens are gone, for the new app as for anyone.
	for _, rt := range []string{first.RefreshToken, bobTok.RefreshToken} {
		status, _, body := again.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("an old wiki refresh token at the new wiki: %d %v", status, body)
		}
	}
	// alice's other app keeps her consent and tokens.
	if _, err := srv.Main.Store.GetGrant(ctx, alice.ID, "chat"); err != nil {
		t.Errorf("alice's consent to chat: %v", err)
	}
	status, _, body := chat.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chatTok.RefreshToken}}, true)
	if status != http.StatusOK {
		t.Errorf("alice's chat refresh: %d %v", status, body)
	}
}
