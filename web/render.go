package web

import (
	"bytes"
	"net/http"

	"github.com/keyport/keyport/storage"
)

// Base holds what every page needs.
type Base struct {
	Title     string
	CSRFToken string
	Lang      string // "en", "de": the page's language
	Theme     string // "light", "dark" or "" (follow the system)
	Issuer    string
	User      *UserView
	Nav       string // which portal section is current, for the menu
	// AdminSection is the console's current section (a Key of
	// AdminSections) on pages with Nav "admin".
	AdminSection  string
	AdminSections []AdminSection
}

// AdminSection is one entry of the admin console's menu.
type AdminSection struct{ Key, Label, Path string }

// AdminSections is the console's menu, in order.
var AdminSections = []AdminSection{
	{"overview", "Overview", "/admin"},
	{"users", "Users", "/admin/users"},
	{"groups", "Groups", "/admin/groups"},
	{"apps", "Apps", "/admin/apps"},
	{"settings", "Settings", "/admin/settings"},
	{"audit", "Audit log", "/admin/audit"},
	{"directories", "Directories", "/admin/directories"},
	{"deliveries", "Deliveries", "/admin/deliveries"},
	{"webhooks", "Webhooks", "/admin/webhooks"},
}

// UserView is the signed-in user as the menu shows them.
type UserView struct {
	ID, Name, Username, Email string
	Admin                     bool
}

// Base fills what every page needs. Pass the signed-in user when there is
// one: their language and theme apply.
func (s *Web) Base(r *http.Request, u *storage.User, title string) Base {
	b := Base{Title: title, Issuer: s.opts.Issuer, CSRFToken: s.CSRFToken(r), AdminSections: AdminSections}
	locale := ""
	if u != nil {
		b.User = &UserView{ID: u.ID, Name: u.Name, Username: u.Username, Email: u.Email, Admin: u.Admin}
		locale, b.Theme = u.Locale, u.Theme
	}
	b.Lang = PickLanguage(r, locale)
	b.Title = Translate(b.Lang, title)
	return b
}

// Render executes a page into a buffer first, so a template error becomes a
// clean 500 instead of half a page.
func (s *Web) Render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		s.log.ErrorContext(r.Context(), "render template", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	// Pages also render for the provider (its error pages), outside the
	// portal's ServeHTTP.
	SecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// SecurityHeaders are on every page and every portal response.
func SecurityHeaders(h http.Header) {
	// Scripts only from our own /static (the WebAuthn ceremonies); nothing
	// inline anywhere. Forms post to Keyport only, so an injected form
	// cannot send what someone types to another site; a form whose answer
	// leaves Keyport goes through the portal's hand-over page.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Sign-in URLs carry request IDs; never leak them to other sites.
	h.Set("Referrer-Policy", "no-referrer")
}
