package mail_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/templates"
)

func shipped(t *testing.T) *mail.Templates {
	t.Helper()
	sub, err := fs.Sub(templates.FS, "mail")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := mail.ParseTemplates(sub)
	if err != nil {
		t.Fatalf("ParseTemplates: %v", err)
	}
	return tm
}

// TestTestMessageTemplate renders the shipped test message in each
// language: product and host appear, German for de and de-AT, English for
// anything else, and data is escaped in HTML.
func TestTestMessageTemplate(t *testing.T) {
	tm := shipped(t)
	data := mail.Common{Product: "Keyport", Host: "id.example.com"}
	for lang, wantSubject := range map[string]string{
		"en":    "Test message from Keyport at id.example.com",
		"de":    "Testnachricht von Keyport auf id.example.com",
		"de-AT": "Testnachricht von Keyport auf id.example.com",
		"fr":    "Test message from Keyport at id.example.com",
		"":      "Test message from Keyport at id.example.com",
	} {
		m, err := tm.Render("test", lang, data)
		if err != nil {
			t.Fatalf("Render %q: %v", lang, err)
		}
		if m.Subject != wantSubject {
			t.Errorf("%q: subject %q, want %q", lang, m.Subject, wantSubject)
		}
		german := strings.HasPrefix(wantSubject, "Testnachricht")
		if !strings.Contains(m.Text, "Keyport at id.example.com") && !german || strings.HasPrefix(m.Text, "Hallo,") != german {
			t.Errorf("%q: text %q", lang, m.Text)
		}
		if !strings.Contains(m.HTML, "<strong>Keyport</strong>") || strings.Contains(strings.ToLower(m.HTML), "src=") {
			t.Errorf("%q: html %q", lang, m.HTML)
		}
	}
	m, err := tm.Render("test", "en", mail.Common{Product: "Keyport", Host: `<script>x</script>`})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("host not escaped in HTML: %s", m.HTML)
	}
	if _, err := tm.Render("no-such", "en", mail.Common{}); err == nil {
		t.Error("Render of an unknown template succeeded")
	}
}

// TestParseTemplatesRefuses: what would send broken or tracking mail is
// refused at start.
func TestParseTemplatesRefuses(t *testing.T) {
	ok := func() fstest.MapFS {
		return fstest.MapFS{
			"a.en.txt":  {Data: []byte(`{{define "subject"}}A{{end}}a`)},
			"a.de.txt":  {Data: []byte(`{{define "subject"}}A{{end}}a`)},
			"a.en.html": {Data: []byte(`<p>a</p>`)},
			"a.de.html": {Data: []byte(`<p>a</p>`)},
		}
	}
	if _, err := mail.ParseTemplates(ok()); err != nil {
		t.Fatalf("a valid set: %v", err)
	}
	for name, change := range map[string]func(fstest.MapFS){
		"missing language": func(f fstest.MapFS) { delete(f, "a.de.txt") },
		"html for some":    func(f fstest.MapFS) { delete(f, "a.de.html") },
		"no subject":       func(f fstest.MapFS) { f["a.de.txt"] = &fstest.MapFile{Data: []byte("a")} },
		"remote image": func(f fstest.MapFS) {
			f["a.en.html"] = &fstest.MapFile{Data: []byte(`<img src="https://t.example/p.gif">`)}
		},
		"remote style": func(f fstest.MapFS) {
			f["a.de.html"] = &fstest.MapFile{Data: []byte(`<p style="background:url(https://t.example/p)">`)}
		},
		"bad syntax": func(f fstest.MapFS) { f["a.en.txt"] = &fstest.MapFile{Data: []byte(`{{define "subject"}}A{{end}}{{.`)} },
	} {
		f := ok()
		change(f)
		if _, err := mail.ParseTemplates(f); err == nil {
			t.Errorf("%s: ParseTemplates succeeded", name)
		}
	}
}
