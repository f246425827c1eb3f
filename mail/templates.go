package mail

import (
	"bytes"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"strings"
	texttemplate "text/template"
)

// Languages are the languages every mail template exists in; the first is
// the fallback for any other.
var Languages = []string{"en", "de"}

// Common is what every mail template may use; a template's data embeds it.
type Common struct {
	Product string // "Keyport"
	Host    string // the issuer's host, such as "id.example.com"
}

// Templates renders mail from a directory of templates, one set per
// message and language:
//
//	NAME.LANG.txt   text/template: {{define "subject"}}…{{end}}, then the
//	                plain-text body
//	NAME.LANG.html  html/template: the HTML body (optional, but then for
//	                every language)
//
// HTML bodies carry no remote content (no images, fonts or style sheets
// from elsewhere), so opening a message tells nobody anything.
type Templates struct {
	text map[string]*texttemplate.Template // by "NAME.LANG"
	html map[string]*htmltemplate.Template
}

// ParseTemplates parses every template in fsys (its root: the mail
// directory). It fails on a template that does not parse, a message that
// lacks a language, a text template without a subject, and an HTML
// template that loads anything remote.
func ParseTemplates(fsys fs.FS) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	files, err := fs.Glob(fsys, "*.*.*")
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, f := range files {
		key, ext := strings.TrimSuffix(f, path.Ext(f)), path.Ext(f)
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("mail template %s: %w", f, err)
		}
		switch ext {
		case ".txt":
			tt, err := texttemplate.New(key).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return nil, fmt.Errorf("mail template %s: %w", f, err)
			}
			if tt.Lookup("subject") == nil {
				return nil, fmt.Errorf("mail template %s: no {{define \"subject\"}}", f)
			}
			t.text[key] = tt
		case ".html":
			if lower := strings.ToLower(string(b)); strings.Contains(lower, "src=") || strings.Contains(lower, "url(") || strings.Contains(lower, "<link") {
				return nil, fmt.Errorf("mail template %s: loads remote content (src=, url( or <link>); mail must be self-contained", f)
			}
			ht, err := htmltemplate.New(key).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return nil, fmt.Errorf("mail template %s: %w", f, err)
			}
			t.html[key] = ht
		default:
			continue
		}
		names[strings.TrimSuffix(key, path.Ext(key))] = true
	}
	var errs []error
	for name := range names {
		_, hasHTML := t.html[name+"."+Languages[0]]
		for _, lang := range Languages {
			if t.text[name+"."+lang] == nil {
				errs = append(errs, fmt.Errorf("mail template %s.%s.txt is missing", name, lang))
			}
			if _, ok := t.html[name+"."+lang]; ok != hasHTML {
				errs = append(errs, fmt.Errorf("mail template %s: %s.html exists for some languages only", name, lang))
			}
		}
	}
	return t, errors.Join(errs...)
}

// Render fills the message name in lang (a language tag such as "de-AT";
// English for any language without templates) with data, which embeds
// Common. The result has Subject, Text and, when the message has HTML
// templates, HTML; the caller sets To and ID.
func (t *Templates) Render(name, lang string, data any) (Message, error) {
	lang = pickLanguage(lang)
	key := name + "." + lang
	tt := t.text[key]
	if tt == nil {
		return Message{}, fmt.Errorf("no mail template %q", name)
	}
	var subject, text bytes.Buffer
	if err := tt.ExecuteTemplate(&subject, "subject", data); err != nil {
		return Message{}, fmt.Errorf("mail template %s subject: %w", key, err)
	}
	if err := tt.Execute(&text, data); err != nil {
		return Message{}, fmt.Errorf("mail template %s: %w", key, err)
	}
	m := Message{
		// One line: template whitespace and newlines from data fold away.
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    strings.TrimLeft(text.String(), "\n"),
	}
	if ht := t.html[key]; ht != nil {
		var html bytes.Buffer
		if err := ht.Execute(&html, data); err != nil {
			return Message{}, fmt.Errorf("mail template %s.html: %w", key, err)
		}
		m.HTML = html.String()
	}
	return m, nil
}

func pickLanguage(tag string) string {
	primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	for _, l := range Languages {
		if l == primary {
			return l
		}
	}
	return Languages[0]
}
