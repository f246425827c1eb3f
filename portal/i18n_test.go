package portal

import (
	"io/fs"
	"net/http/httptest"
	"regexp"
	"sort"
	"testing"

	"github.com/keyport/keyport/templates"
)

// literalT finds {{t .Lang "…"}} and {{t $.Lang "…"}} in templates.
var literalT = regexp.MustCompile(`\{\{-?\s*t \$?\.Lang "((?:[^"\\]|\\.)*)"`)

// TestGermanCatalogComplete makes sure every text a template translates has
// a German entry, so a German page never shows stray English.
func TestGermanCatalogComplete(t *testing.T) {
	names, err := fs.Glob(templates.FS, "*.html")
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string][]string{}
	total := 0
	for _, name := range names {
		raw, err := fs.ReadFile(templates.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range literalT.FindAllStringSubmatch(string(raw), -1) {
			total++
			if _, ok := catalogs["de"][m[1]]; !ok {
				missing[name] = append(missing[name], m[1])
			}
		}
	}
	if total < 100 {
		t.Fatalf("only %d translated texts found in the templates; is the pattern right?", total)
	}
	files := make([]string, 0, len(missing))
	for f := range missing {
		files = append(files, f)
	}
	sort.Strings(files)
	for _, f := range files {
		for _, s := range missing[f] {
			t.Errorf("%s: no German for %q", f, s)
		}
	}
}

func TestPickLanguage(t *testing.T) {
	cases := []struct{ accept, profile, want string }{
		{"de-DE,de;q=0.9,en;q=0.5", "", "de"},
		{"en-US,en;q=0.9", "", "en"},
		{"fr-FR", "", "en"},
		{"", "", "en"},
		{"en-US", "de", "de"}, // the profile wins
		{"de", "en-GB", "en"}, // both ways
		{"de", "tlh", "de"},   // an unsupported profile value is ignored
		{"garbage;;q=x", "", "en"},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		if c.accept != "" {
			r.Header.Set("Accept-Language", c.accept)
		}
		if got := pickLanguage(r, c.profile); got != c.want {
			t.Errorf("Accept-Language %q, profile %q: %s, want %s", c.accept, c.profile, got, c.want)
		}
	}
	if translate("de", "Your profile") != "Dein Profil" || translate("en", "Your profile") != "Your profile" || translate("xx", "Nope %d", 3) != "Nope 3" {
		t.Error("translate")
	}
}
