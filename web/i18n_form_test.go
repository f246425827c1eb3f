package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/keyport/keyport/templates"
)

// duWords are words that only the informal address uses. Keyport's German
// addresses its reader as "Sie" everywhere: the portal, the console, error
// messages and mails; one screen saying "du" next to a mail saying "Sie"
// reads as two products. Words that "Sie" also uses ("Ihr" is "their" too,
// "Sie" is "they") cannot tell the forms apart, so the test looks for
// these, which cannot be anything but "du".
var duWords = map[string]bool{
	"du": true, "dich": true, "dir": true,
	"dein": true, "deine": true, "deinen": true, "deinem": true, "deiner": true, "deines": true,
	// Verbs in the second person singular.
	"bist": true, "hast": true, "kannst": true, "musst": true, "darfst": true, "wirst": true,
	"willst": true, "möchtest": true, "solltest": true, "siehst": true, "weißt": true,
	// Imperatives that have no other reading.
	"gib": true, "nimm": true, "geh": true, "frag": true, "sag": true, "lass": true,
	"lies": true, "sieh": true, "hilf": true,
}

// markup is what a mail template has besides its text: template actions
// ({{if .X}}) and HTML tags with their attributes (dir="ltr").
var markup = regexp.MustCompile(`\{\{.*?\}\}|<[^>]*>`)

// duWordsIn lists the informal words of a German text.
func duWordsIn(text string) []string {
	var found []string
	for _, w := range strings.FieldsFunc(markup.ReplaceAllString(text, " "), func(r rune) bool {
		return !unicode.IsLetter(r)
	}) {
		if duWords[strings.ToLower(w)] {
			found = append(found, w)
		}
	}
	return found
}

// TestGermanSaysSie walks every German message of every catalog (each
// de… map in i18n_*.go, so that an entry another area's map shadows in
// the merge counts too) and every German mail template, and fails on
// the informal address.
func TestGermanSaysSie(t *testing.T) {
	files, err := filepath.Glob("i18n_*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("catalog sources: %v", err)
	}
	fset := token.NewFileSet()
	messages, sie := 0, 0
	check := func(where, text string) {
		if found := duWordsIn(text); len(found) > 0 {
			t.Errorf("%s: %q says du (%s); Keyport's German says Sie", where, text, strings.Join(found, ", "))
		}
		if strings.Contains(text, "Sie") || strings.Contains(text, "Ihr") {
			sie++
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.VAR {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "de") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.CompositeLit)
					if !ok {
						continue
					}
					for _, el := range lit.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						text, ok := stringLiteral(t, kv.Value)
						if !ok {
							continue
						}
						messages++
						check(fset.Position(kv.Value.Pos()).String(), text)
					}
				}
			}
		}
	}
	// What the portal shows is the merged catalog; a catalog built some
	// other way than a literal would be missed above.
	for en, de := range catalogs["de"] {
		if found := duWordsIn(de); len(found) > 0 {
			t.Errorf("catalogs[de][%q]: %q says du (%s)", en, de, strings.Join(found, ", "))
		}
	}
	if messages < len(catalogs["de"]) {
		t.Fatalf("only %d German messages found in the sources, the catalog has %d; is the parser right?", messages, len(catalogs["de"]))
	}

	mails, err := fs.Glob(templates.FS, "mail/*.de.*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range mails {
		raw, err := fs.ReadFile(templates.FS, name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			check(name+":"+strconv.Itoa(i+1), line)
		}
	}
	if len(mails) < 20 {
		t.Fatalf("only %d German mail templates found", len(mails))
	}
	if sie < 100 {
		t.Fatalf("only %d texts say Sie or Ihr; is the test reading German?", sie)
	}
}

func TestDuWordsIn(t *testing.T) {
	cases := map[string]string{
		"Geben Sie Ihr Passwort ein.":              "",
		"Gib dein Passwort ein.":                   "Gib,dein",
		"Du bist angemeldet.":                      "Du,bist",
		"oder lass das Feld leer":                  "lass",
		`<p dir="ltr">{{if .Dir}}Hallo{{end}}</p>`: "",
		"Sie läuft ab; siehe unten.":               "",
		"Der Link gilt für dich.":                  "dich",
		"Deinstallieren":                           "",
	}
	for text, want := range cases {
		if got := strings.Join(duWordsIn(text), ","); got != want {
			t.Errorf("duWordsIn(%q) = %q, want %q", text, got, want)
		}
	}
}
