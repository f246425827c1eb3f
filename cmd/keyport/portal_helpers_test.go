package main

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// signInPortal signs b in on the portal's own sign-in page and returns the
// page it lands on.
func signInPortal(t *testing.T, srv *testServer, b *browser, login string) page {
	t.Helper()
	p := b.get(srv.URL + "/login")
	p = b.submit(p, "/login", url.Values{"login": {login}, "password": {testPassword}})
	if p.Status != http.StatusOK || hasForm(p.Body, "/login") {
		t.Fatalf("portal sign-in as %s: %d at %s: %s", login, p.Status, p.URL, truncateBody(p.Body))
	}
	return p
}

// postPage submits a form on page p to action with p's CSRF token plus form.
func postPage(b *browser, p page, action string, form url.Values) page {
	b.t.Helper()
	if form.Get("csrf_token") == "" {
		form.Set("csrf_token", formFields(p.Body).Get("csrf_token"))
	}
	u, _ := p.URL.Parse(action)
	return b.post(u.String(), form)
}

// upload posts a multipart form with one file field.
func upload(b *browser, p page, action, field, filename string, data []byte) page {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf_token", formFields(p.Body).Get("csrf_token"))
	fw, _ := mw.CreateFormFile(field, filename)
	_, _ = fw.Write(data)
	_ = mw.Close()
	u, _ := p.URL.Parse(action)
	req, _ := http.NewRequest(http.MethodPost, u.String(), &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

func (s *testServer) user(id string) storage.User {
	s.t.Helper()
	u, err := s.Main.Store.GetUser(context.Background(), id)
	if err != nil {
		s.t.Fatalf("get user %s: %v", id, err)
	}
	return u
}

func newConfidentialClient(id string) account.NewClient {
	return account.NewClient{ID: id, Name: "App " + id, SkipConsent: true}
}

// idTokenClaims verifies the token response's ID token and returns its claims.
func idTokenClaims(t *testing.T, c *testClient, tok *oauth2.Token) map[string]any {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func oauthScope(scope string) oauth2.AuthCodeOption { return oauth2.SetAuthURLParam("scope", scope) }
