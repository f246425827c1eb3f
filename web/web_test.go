package web

import (
	"testing"
	"testing/fstest"

	"github.com/keyport/keyport/templates"
)

func TestNewParsesEveryPage(t *testing.T) {
	s, err := New(Options{Templates: templates.FS, CookieKey: make([]byte, 32), CookieName: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range requiredPages {
		if s.pages[p] == nil {
			t.Errorf("page %s not parsed", p)
		}
	}
}

func TestNewRefusesMissingOrBrokenTemplates(t *testing.T) {
	layout := &fstest.MapFile{Data: []byte(`{{template "content" .}}`)}
	missing := fstest.MapFS{"layout.html": layout, "static/style.css": &fstest.MapFile{}}
	if _, err := New(Options{Templates: missing, CookieKey: make([]byte, 32)}); err == nil {
		t.Error("started without the page templates")
	}
	broken := fstest.MapFS{"layout.html": layout, "static/style.css": &fstest.MapFile{}}
	for _, p := range requiredPages {
		broken[p+".html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}ok{{end}}`)}
	}
	broken["login.html"] = &fstest.MapFile{Data: []byte(`{{define "content"}}{{.Unclosed}`)}
	if _, err := New(Options{Templates: broken, CookieKey: make([]byte, 32)}); err == nil {
		t.Error("started with a broken template")
	}
	if _, err := New(Options{Templates: templates.FS, CookieKey: make([]byte, 8)}); err == nil {
		t.Error("accepted a short cookie key")
	}
}
