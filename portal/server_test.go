package portal

import (
	"testing"

	"github.com/keyport/keyport/templates"
	"github.com/keyport/keyport/web"
)

// testWeb is the browser binding and the pages the portal is built with.
func testWeb(t *testing.T) *web.Web {
	t.Helper()
	w, err := web.New(web.Options{Templates: templates.FS, CookieKey: make([]byte, 32), CookieName: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestNewNeedsWeb(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("started without the browser binding and the pages")
	}
}
