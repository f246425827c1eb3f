package account

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestErrorAdapter: account returns its own errors (*Error, with a code and
// a message for people) and wraps everything else with context; the one
// adapter (ErrorCode, ErrorMessage) maps the rest to Internal with a
// generic message, so no cause (paths, storage errors) reaches a page,
// while the log keeps the context.
func TestErrorAdapter(t *testing.T) {
	cause := errors.New("bolt: database not open")
	internal := fmt.Errorf("load user %q: %w", "u1", cause)
	if ErrorCode(internal) != Internal || ErrorMessage(internal) != "Something went wrong on our side. Please try again." {
		t.Errorf("wrapped cause: %s, %q", ErrorCode(internal), ErrorMessage(internal))
	}
	if !errors.Is(internal, cause) || !strings.Contains(internal.Error(), `load user "u1"`) {
		t.Errorf("the log loses the cause or its context: %v", internal)
	}
	own := FieldErrorf("email", "That is not an email address.")
	wrapped := fmt.Errorf("save profile: %w", own)
	if ErrorCode(wrapped) != Invalid || ErrorMessage(wrapped) != own.Message || ErrorField(wrapped) != "email" {
		t.Errorf("an account error through a wrap: %s %q %q", ErrorCode(wrapped), ErrorMessage(wrapped), ErrorField(wrapped))
	}
}

// LocalMessage translates a message with args by its format and puts the
// args in after, translating those that are phrases; English (a translate
// that knows nothing) gives back Message exactly, which the JSON API and
// the logs keep.
func TestLocalMessage(t *testing.T) {
	de := map[string]string{
		"No client %q.": "Es gibt keinen Client %q.",
		"Client %q is defined in the configuration file%s": "Der Client %q ist in der Konfigurationsdatei festgelegt%s",
		"; change it there.":                                  "; ändern Sie ihn dort.",
		"Fixed message.":                                      "Feste Meldung.",
		"Key %d: EC keys must use P-256.":                     "Schlüssel %d: EC-Schlüssel müssen P-256 verwenden.",
		"The key set is not a JWK Set: oops":                  "whole message, looked up as before",
		"Something went wrong on our side. Please try again.": "Bei uns ist etwas schiefgegangen.",
	}
	german := func(text string) string {
		if tr, ok := de[text]; ok {
			return tr
		}
		return text
	}
	english := func(text string) string { return text }
	jwks := Errorf(Invalid, "Key %d: EC keys must use P-256.", 2)
	for _, c := range []struct {
		err  error
		want string
	}{
		{Errorf(NotFound, "No client %q.", "wiki"), `Es gibt keinen Client "wiki".`},
		{FieldErrorf("id", "No client %q.", "100%"), `Es gibt keinen Client "100%".`},
		{errStaticClient("wiki", staticChange), `Der Client "wiki" ist in der Konfigurationsdatei festgelegt; ändern Sie ihn dort.`},
		{fmt.Errorf("wrapped: %w", Errorf(Invalid, "Fixed message.")), "Feste Meldung."},
		{&Error{Code: Invalid, Message: "Fixed message."}, "Feste Meldung."},
		{inField("jwks", jwks), "Schlüssel 2: EC-Schlüssel müssen P-256 verwenden."},
		{Errorf(Invalid, "The key set is not a JWK Set: %s", "oops"), "whole message, looked up as before"},
		{Errorf(Invalid, "Not in the catalog %d.", 7), "Not in the catalog 7."},
		{errors.New("disk on fire"), "Bei uns ist etwas schiefgegangen."},
	} {
		if got := LocalMessage(c.err, german); got != c.want {
			t.Errorf("German of %q: %q, want %q", ErrorMessage(c.err), got, c.want)
		}
		if got := LocalMessage(c.err, english); got != ErrorMessage(c.err) {
			t.Errorf("English of %q: %q", ErrorMessage(c.err), got)
		}
	}
	if f := inField("jwks", jwks); ErrorField(f) != "jwks" || ErrorField(jwks) != "" || f.Message != jwks.Message {
		t.Errorf("inField: %+v from %+v", f, jwks)
	}
}
