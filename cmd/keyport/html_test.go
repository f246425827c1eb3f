package main

import (
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// HTML of portal pages, parsed with golang.org/x/net/html so that tests
// ask about elements and attributes, never about how the markup happens to
// be spelled.

// htmlNode is one node of a parsed page.
type htmlNode struct{ *html.Node }

// parsePage parses a page's body; a page that does not parse fails the test.
func parsePage(t *testing.T, body string) htmlNode {
	t.Helper()
	doc, err := parseHTML(body)
	if err != nil {
		t.Fatalf("parse HTML: %v\n%s", err, truncateBody(body))
	}
	return doc
}

// parseHTML parses a page's body. The HTML5 parser accepts any text (a
// JSON answer is a document with one text node), so the only errors are
// the reader's, and a string's reader has none.
func parseHTML(body string) (htmlNode, error) {
	doc, err := html.Parse(strings.NewReader(body))
	return htmlNode{doc}, err
}

// formFields returns the hidden inputs of a page's forms, every form at
// once: what the tests that post a page's token and flow IDs need.
func formFields(body string) url.Values {
	doc, _ := parseHTML(body) // never fails on a string; see parseHTML
	v := url.Values{}
	for _, f := range doc.all("form") {
		for _, in := range f.all("input", "type", "hidden") {
			if name := in.attr("name"); name != "" {
				v.Set(name, in.attr("value"))
			}
		}
	}
	return v
}

// attr returns the value of an attribute, "" when it is missing.
func (n htmlNode) attr(key string) string {
	v, _ := n.lookup(key)
	return v
}

func (n htmlNode) lookup(key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func (n htmlNode) hasClass(class string) bool {
	return n.Node != nil && n.Type == html.ElementNode && strings.Contains(" "+strings.Join(strings.Fields(n.attr("class")), " ")+" ", " "+class+" ")
}

// matches reports whether n is an element named tag ("" for any) with the
// attributes of attrs, given as key, value pairs. A value of "*" only asks
// for the attribute; a key of "class" asks for one class among several.
func (n htmlNode) matches(tag string, attrs ...string) bool {
	if n.Type != html.ElementNode || (tag != "" && n.Data != tag) {
		return false
	}
	for i := 0; i+1 < len(attrs); i += 2 {
		key, want := attrs[i], attrs[i+1]
		got, ok := n.lookup(key)
		switch {
		case !ok:
			return false
		case want == "*":
		case key == "class":
			if !n.hasClass(want) {
				return false
			}
		case got != want:
			return false
		}
	}
	return true
}

// all returns the elements below n (in document order) that match.
func (n htmlNode) all(tag string, attrs ...string) []htmlNode {
	var out []htmlNode
	var walk func(*html.Node)
	walk = func(p *html.Node) {
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			if (htmlNode{c}).matches(tag, attrs...) {
				out = append(out, htmlNode{c})
			}
			walk(c)
		}
	}
	if n.Node != nil {
		walk(n.Node)
	}
	return out
}

// first returns the first element below n that matches; ok is false when
// there is none (its Node is nil then).
func (n htmlNode) first(tag string, attrs ...string) (htmlNode, bool) {
	if all := n.all(tag, attrs...); len(all) > 0 {
		return all[0], true
	}
	return htmlNode{}, false
}

// byID returns the element with the given id.
func (n htmlNode) byID(id string) (htmlNode, bool) { return n.first("", "id", id) }

// text is the text below n with its white space collapsed.
func (n htmlNode) text() string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(p *html.Node) {
		if p.Type == html.TextNode {
			b.WriteString(p.Data)
			b.WriteByte(' ')
		}
		for c := p.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	if n.Node != nil {
		walk(n.Node)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// formValues returns what submitting the form n would send, as a browser
// builds it: every named control that is not disabled, in document order;
// text inputs and hidden ones with their value, checked boxes and radio
// buttons (with "on" when they have no value), a textarea's text, a
// select's selected options (the first option when a single select has
// none selected). Buttons are left out, as no button was pressed, and so
// are files.
func (n htmlNode) formValues() url.Values {
	v := url.Values{}
	for _, c := range n.all("") {
		name := c.attr("name")
		if _, disabled := c.lookup("disabled"); name == "" || disabled {
			continue
		}
		switch c.Data {
		case "input":
			switch c.attr("type") {
			case "checkbox", "radio":
				if _, checked := c.lookup("checked"); !checked {
					continue
				}
				if val, ok := c.lookup("value"); ok {
					v.Add(name, val)
				} else {
					v.Add(name, "on")
				}
			case "submit", "button", "image", "reset", "file":
			default:
				v.Add(name, c.attr("value"))
			}
		case "textarea":
			// The parser already dropped the newline right after <textarea>,
			// as browsers do.
			v.Add(name, c.rawText())
		case "select":
			for _, o := range c.selectedOptions() {
				v.Add(name, o.optionValue())
			}
		}
	}
	return v
}

// rawText is the text below n as written, white space kept.
func (n htmlNode) rawText() string {
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}

// selectedOptions are the options of the select n that a browser sends.
func (n htmlNode) selectedOptions() []htmlNode {
	var chosen, enabled []htmlNode
	for _, o := range n.all("option") {
		if _, disabled := o.lookup("disabled"); disabled {
			continue
		}
		enabled = append(enabled, o)
		if _, sel := o.lookup("selected"); sel {
			chosen = append(chosen, o)
		}
	}
	if _, multiple := n.lookup("multiple"); multiple {
		return chosen
	}
	switch {
	case len(chosen) > 0:
		return chosen[len(chosen)-1:] // of several selected, the last one wins
	case len(enabled) > 0:
		return enabled[:1]
	}
	return nil
}

// optionValue is what an option sends: its value, or else its text.
func (n htmlNode) optionValue() string {
	if v, ok := n.lookup("value"); ok {
		return v
	}
	return n.text()
}

// hasForm reports whether a page has a form whose action is action.
func hasForm(body, action string) bool {
	doc, _ := parseHTML(body) // never fails on a string; see parseHTML
	_, ok := doc.formByAction(action)
	return ok
}

// formByAction returns the form on the page that posts to action.
func (n htmlNode) formByAction(action string) (htmlNode, bool) {
	return n.first("form", "action", action)
}

// submitForm fills the form posting to action on page p with its own
// values plus extra (which replace them) and posts it, as a browser would.
func submitForm(t *testing.T, b *browser, p page, action string, extra url.Values) page {
	t.Helper()
	f, ok := parsePage(t, p.Body).formByAction(action)
	if !ok {
		t.Fatalf("no form posting to %s on %s:\n%s", action, p.URL, truncateBody(p.Body))
	}
	form := f.formValues()
	for k, vs := range extra {
		form[k] = vs
	}
	u, _ := p.URL.Parse(action)
	return b.post(u.String(), form)
}

// htmlForm is a form on a page as a browser reads it: where it goes, how,
// and what it sends when submitted unchanged (formValues).
type htmlForm struct {
	Action, Method string
	Fields         url.Values
}

// pageForms returns the forms of a page in document order; a form without
// a method is a GET form, as in browsers.
func pageForms(t *testing.T, body string) []htmlForm {
	t.Helper()
	var out []htmlForm
	for _, f := range parsePage(t, body).all("form") {
		method := strings.ToLower(f.attr("method"))
		if method == "" {
			method = "get"
		}
		out = append(out, htmlForm{Action: f.attr("action"), Method: method, Fields: f.formValues()})
	}
	return out
}

// textByID is the text of the page's element with the given id; ok is
// false when there is none.
func textByID(t *testing.T, body, id string) (text string, ok bool) {
	t.Helper()
	n, ok := parsePage(t, body).byID(id)
	return n.text(), ok
}

// totpSecret is the secret an enrolment page shows (the text of
// #totp-secret), "" when it shows none that reads as base32.
func totpSecret(t *testing.T, body string) string {
	t.Helper()
	s, _ := textByID(t, body, "totp-secret")
	if s == "" || strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		return ""
	}
	return s
}

// inputValues are the values of the page's inputs named name, in
// document order.
func inputValues(t *testing.T, body, name string) []string {
	t.Helper()
	var out []string
	for _, in := range parsePage(t, body).all("input", "name", name) {
		out = append(out, in.attr("value"))
	}
	return out
}

// comparablePage is a page's markup with what differs between two answers
// by design made the same: the CSRF token (a fresh one per browser) and
// the login the person typed (any value attribute that is login). Answers
// that must not tell two logins apart compare equal after it.
func comparablePage(t *testing.T, body, login string) string {
	t.Helper()
	doc := parsePage(t, body)
	for _, n := range doc.all("", "value", "*") {
		for i, a := range n.Attr {
			switch {
			case a.Key != "value":
			case n.attr("name") == "csrf_token":
				n.Attr[i].Val = "CSRF"
			case a.Val == login:
				n.Attr[i].Val = "LOGIN"
			}
		}
	}
	var b strings.Builder
	if err := html.Render(&b, doc.Node); err != nil {
		t.Fatalf("render HTML: %v", err)
	}
	return b.String()
}
