package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/storage"
)

// TestRecoveryEmailFromBeforeTheDirectory: a recovery email set while the
// account was local is not shown as in use once a directory owns the
// email, neither on the profile page nor in the API, and the person can
// remove it through the API.
func TestRecoveryEmailFromBeforeTheDirectory(t *testing.T) {
	srv := startServer(t, "", nil)
	carol := srv.createUser("carol", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "carol")
	token := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"rw"}, "scope": {"read-write"}})
	const old = "carol@elsewhere.example"
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", token, "application/json", `{"recovery_email":"`+old+`"}`); status != http.StatusOK {
		t.Fatalf("set the recovery email: %d %v", status, body)
	}
	if _, err := srv.Main.Store.UpdateUser(context.Background(), carol.ID, func(u storage.User) (storage.User, error) {
		u.Source = "corp-ldap"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if p := b.get(srv.URL + "/profile"); p.Status != http.StatusOK || strings.Contains(p.Body, old) {
		t.Errorf("the profile page shows the recovery email from before the directory: %d", p.Status)
	}
	if _, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); body["recovery_email"] != "" {
		t.Errorf("the API shows the recovery email %v", body["recovery_email"])
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", token, "application/json", `{"recovery_email":""}`); status != http.StatusOK {
		t.Errorf("remove the recovery email: %d %v", status, body)
	}
	if u := srv.user(carol.ID); u.RecoveryEmail != "" {
		t.Errorf("stored recovery email after removing it: %q", u.RecoveryEmail)
	}
}
