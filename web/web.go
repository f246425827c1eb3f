// Package web is what the portal and the provider share about a browser:
// its signed cookie (the browser binding) and the pages Keyport shows it,
// with their language. cmd builds it first and hands it to both, so
// neither has to ask the other for a page or a browser's ID.
package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/sessions"
)

// Options configure a Web.
type Options struct {
	Issuer    string // public URL, shown on every page
	Templates fs.FS  // *.html and static/
	// CookieKey signs the browser's cookie (32 or 64 random bytes).
	CookieKey      []byte
	CookieName     string
	CookieSecure   bool
	CookieSameSite http.SameSite
	// SessionLifetime is the cookie's Max-Age, asked each time a cookie
	// is written, so a lifetime changed while Keyport runs applies to the
	// next cookie; nil writes cookies that end with the browser session.
	SessionLifetime func() time.Duration
	Logger          *slog.Logger
}

// Web holds the browser binding and the parsed pages.
type Web struct {
	opts    Options
	cookies *sessions.CookieStore
	pages   map[string]*template.Template
	static  fs.FS
	log     *slog.Logger
}

// maxCookieAge is the oldest signature a cookie may carry, in seconds:
// the longest a browser keeps a cookie, and the runtime settings' longest
// session lifetime.
const maxCookieAge = 400 * 24 * 60 * 60

// requiredPages must exist; every other *.html beside layout.html is parsed
// as a page too, so an area adds a page by adding its template.
var requiredPages = []string{"login", "consent", "error", "setup", "home", "logged_out"}

// templateFuncs are available in every template.
var templateFuncs = template.FuncMap{
	// t translates English text into the page's language: {{t .Lang "Save"}}.
	"t": Translate,
	// languageName names a language code in its own language.
	"languageName": func(code string) string { return LanguageNames[code] },
	// dict builds the argument of a sub-template from key/value pairs:
	// {{template "field" (dict "P" . "Key" "email")}}.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}

// New parses every template up front, so a broken one stops start-up
// instead of a request.
func New(o Options) (*Web, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(o.CookieKey) < 32 {
		return nil, fmt.Errorf("web: cookie key must be at least 32 bytes")
	}
	s := &Web{opts: o, log: o.Logger, pages: make(map[string]*template.Template)}
	layout, err := template.New("layout.html").Funcs(templateFuncs).ParseFS(o.Templates, "layout.html")
	if err != nil {
		return nil, fmt.Errorf("parse layout template: %w", err)
	}
	// part_*.html define pieces several pages share (a table both the
	// console and the portal show); every page sees them, as the layout.
	parts, err := fs.Glob(o.Templates, "part_*.html")
	if err != nil {
		return nil, fmt.Errorf("list template parts: %w", err)
	}
	if len(parts) > 0 {
		if layout, err = layout.ParseFS(o.Templates, parts...); err != nil {
			return nil, fmt.Errorf("parse template parts: %w", err)
		}
	}
	names, err := fs.Glob(o.Templates, "*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	pageNames := slices.Clone(requiredPages)
	for _, n := range names {
		if n = strings.TrimSuffix(n, ".html"); n != "layout" && !strings.HasPrefix(n, "part_") && !slices.Contains(pageNames, n) {
			pageNames = append(pageNames, n)
		}
	}
	for _, name := range pageNames {
		t, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout for %s: %w", name, err)
		}
		if t, err = t.ParseFS(o.Templates, name+".html"); err != nil {
			return nil, fmt.Errorf("parse template %s.html: %w", name, err)
		}
		s.pages[name] = t
	}
	if s.static, err = fs.Sub(o.Templates, "static"); err != nil {
		return nil, fmt.Errorf("static assets: %w", err)
	}

	s.cookies = sessions.NewCookieStore(o.CookieKey)
	// The signature's own age limit (gorilla's default is 30 days) must
	// not end a sign-in before its session does: the session's expiry,
	// kept on the server, ends it, and its lifetime may be set up to 400
	// days while Keyport runs, as long as browsers keep a cookie (RFC
	// 6265bis caps Max-Age there). Options below set the cookie's Max-Age.
	s.cookies.MaxAge(maxCookieAge)
	s.cookies.Options = &sessions.Options{
		Path:     "/",
		HttpOnly: true,
		Secure:   o.CookieSecure,
		SameSite: o.CookieSameSite,
	}
	return s, nil
}

// Static is the static/ folder of the templates: styles, scripts, icons.
func (s *Web) Static() fs.FS { return s.static }
