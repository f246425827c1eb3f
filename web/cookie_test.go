package web

import (
	"net/http"
	"net/http/httptest"
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
