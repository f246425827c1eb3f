package web

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/templates"
)

// The cookie's Max-Age is the session lifetime in force when it is
// written: a lifetime changed while Keyport runs shortens the next cookie.
func TestCookieMaxAgeFollowsTheLifetimeInForce(t *testing.T) {
	var life atomic.Int64
	life.Store(int64(720 * time.Hour))
	s, err := New(Options{Templates: templates.FS, CookieKey: make([]byte, 32), CookieName: "k",
		SessionLifetime: func() time.Duration { return time.Duration(life.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	maxAge := func() int {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		w := httptest.NewRecorder()
		s.SetSessionSecret(r, "secret")
		if err := s.Save(w, r); err != nil {
			t.Fatal(err)
		}
		cookies := w.Result().Cookies()
		if len(cookies) != 1 || cookies[0].Name != "k" {
			t.Fatalf("cookies written: %v", cookies)
		}
		return cookies[0].MaxAge
	}
	if got := maxAge(); got != 720*3600 {
		t.Errorf("Max-Age = %d, want 30 days", got)
	}
	life.Store(int64(2 * time.Hour))
	if got := maxAge(); got != 2*3600 {
		t.Errorf("Max-Age after shortening the lifetime = %d, want 7200", got)
	}
}

// A cookie signed longer ago than gorilla's default age limit (30 days)
// still carries its sign-in while the session lifetime is longer: the
// server-side session's expiry ends a sign-in, not the signature's age.
func TestCookieOutlivesThirtyDays(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 64)
	s, err := New(Options{Templates: templates.FS, CookieKey: key, CookieName: "k",
		SessionLifetime: func() time.Duration { return 90 * 24 * time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	s.SetSessionSecret(r, "secret")
	if err := s.Save(w, r); err != nil {
		t.Fatal(err)
	}
	written := w.Result().Cookies()[0]

	// The same cookie as it would be had it been written 60 days ago:
	// "date|value|mac", the MAC over "name|date|value".
	raw, err := base64.URLEncoding.DecodeString(written.Value)
	if err != nil {
		t.Fatal(err)
	}
	parts := bytes.SplitN(raw, []byte("|"), 3)
	date := strconv.FormatInt(time.Now().Add(-60*24*time.Hour).Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("k|" + date + "|" + string(parts[1])))
	old := date + "|" + string(parts[1]) + "|" + string(mac.Sum(nil))

	back := httptest.NewRequest(http.MethodGet, "/", nil)
	back.AddCookie(&http.Cookie{Name: "k", Value: base64.URLEncoding.EncodeToString([]byte(old))})
	if got := s.SessionSecret(back); got != "secret" {
		t.Errorf("a 60-day-old cookie under a 90-day lifetime carries %q, want its session", got)
	}
}
