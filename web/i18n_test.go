package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
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

// machineMessages are account files whose messages reach only the CLI or
// machine clients (token endpoints, the API, forward auth), in English.
// clients.go is not one: the console's app pages show its rules.
var machineMessages = map[string]bool{"apitokens.go": true, "apppasswords.go": true}

// formatVerb finds the verbs of a fmt format, %% among them.
var formatVerb = regexp.MustCompile(`%[-+# 0]*(?:\[\d+\])?(?:\d+|\*)?(?:\.(?:\d+|\*)?)?[a-zA-Z%]`)

// sameVerbs reports whether a translation has the verbs of its English
// text in the same order, so that Sprintf with the English args cannot
// give %!d(string=…) or a missing value.
func sameVerbs(en, tr string) bool {
	return slices.Equal(formatVerb.FindAllString(en, -1), formatVerb.FindAllString(tr, -1))
}

// TestGermanAccountMessages makes sure every message of the account rules
// that a portal page can show has German: a fixed message whole, a message
// with args by its format (account.LocalMessage translates the format,
// then puts the args in), whose German must keep the English verbs in
// their order. A format that is only verbs ("%s") passes on text
// translated on its own.
func TestGermanAccountMessages(t *testing.T) {
	files, err := filepath.Glob("../account/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("account sources: %v", err)
	}
	fset := token.NewFileSet()
	checked, formats := 0, 0
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasSuffix(name, "_test.go") || machineMessages[name] {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || (fn.Name != "Errorf" && fn.Name != "FieldErrorf") {
				return true
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			msg, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if len(call.Args) == 2 {
				if strings.Contains(msg, "%") {
					t.Errorf("%s: %q has a %% but no args", fset.Position(lit.Pos()), msg)
					return true
				}
			} else if strings.TrimSpace(formatVerb.ReplaceAllString(msg, "")) == "" {
				return true
			} else {
				formats++
			}
			checked++
			de, ok := catalogs["de"][msg]
			switch {
			case !ok:
				t.Errorf("%s: no German for %q", fset.Position(lit.Pos()), msg)
			case !sameVerbs(msg, de):
				t.Errorf("%s: the German of %q has other verbs: %q", fset.Position(lit.Pos()), msg, de)
			}
			return true
		})
	}
	if checked < 30 || formats < 50 {
		t.Fatalf("only %d account messages found, %d with args; is the parser right?", checked, formats)
	}
}

// TestGermanFormatVerbs checks every catalog entry, not only the account
// rules': a translation keeps its text's verbs in their order.
func TestGermanFormatVerbs(t *testing.T) {
	for en, de := range catalogs["de"] {
		if !sameVerbs(en, de) {
			t.Errorf("the German of %q has other verbs: %q", en, de)
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
		if got := PickLanguage(r, c.profile); got != c.want {
			t.Errorf("Accept-Language %q, profile %q: %s, want %s", c.accept, c.profile, got, c.want)
		}
	}
	if Translate("de", "Your profile") != "Ihr Profil" || Translate("en", "Your profile") != "Your profile" || Translate("xx", "Nope %d", 3) != "Nope 3" {
		t.Error("translate")
	}
}
