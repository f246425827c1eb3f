package account_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// spoofingChars are the invisible characters an app's name (and the other
// names plainText checks) may not hold: the bidirectional formatting
// characters, which reorder what people see, and the zero-width ones that
// serve no name.
var spoofingChars = []rune{
	0x202a, 0x202b, 0x202c, 0x202d, 0x202e, // embeddings, pop, overrides
	0x2066, 0x2067, 0x2068, 0x2069, // isolates
	0x200e, 0x200f, 0x061c, // marks
	0x200b, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xfeff, // zero-width
}

// TestNamesRefuseSpoofingCharacters: an app's name, its allowed groups and
// an initial access token's name refuse every bidi formatting and
// zero-width character with a field error, at registration and at an
// edit, and nothing is stored; names with ZWJ, ZWNJ, a soft hyphen or
// right-to-left text without controls are accepted.
func TestNamesRefuseSpoofingCharacters(t *testing.T) {
	f := newClientFixture(t)
	for _, r := range spoofingChars {
		name := "Goo" + string(r) + "gle"
		t.Run(fmt.Sprintf("U+%04X", r), func(t *testing.T) {
			id := fmt.Sprintf("app-%04x", r)
			_, _, err := f.svc.Clients.RegisterClient(t.Context(), adminActor, account.NewClient{ID: id, Name: name, RedirectURIs: []string{"https://app.example/cb"}})
			if account.ErrorField(err) != "name" {
				t.Errorf("register: %v", err)
			}
			if _, err := f.db.GetClient(t.Context(), id); err == nil {
				t.Error("the refused app was stored")
			}
			before, _ := f.stored(t)
			if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, f.app.ID, "", account.ClientPatch{Name: &name}); account.ErrorField(err) != "name" {
				t.Errorf("rename: %v", err)
			}
			if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, f.app.ID, "", account.ClientPatch{AllowedGroups: &[]string{name}}); account.ErrorField(err) != "allowed_groups" {
				t.Errorf("allowed group: %v", err)
			}
			if after, _ := f.stored(t); after.Name != before.Name || len(after.AllowedGroups) != 0 {
				t.Errorf("a refused edit changed the app: %q %v", after.Name, after.AllowedGroups)
			}
			if _, _, err := f.svc.Registration.CreateInitialAccessToken(t.Context(), adminActor, account.NewInitialAccessToken{Name: name, Lifetime: time.Hour}); account.ErrorField(err) != "name" {
				t.Errorf("initial access token: %v", err)
			}
		})
	}
	for _, name := range []string{
		"👩\u200d💻 Dev", // ZWJ in an emoji sequence
		"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", // ZWNJ in Persian
		"Donau\u00addampf",                   // soft hyphen
		"\u05e2\u05d1\u05e8\u05d9\u05ea App", // Hebrew, no controls
	} {
		c, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, f.app.ID, "", account.ClientPatch{Name: &name})
		if err != nil || c.Name != name {
			t.Errorf("rename to %q: %q %v", name, c.Name, err)
		}
	}
}

// TestUpdateKeepsStoredSpoofingName: an app whose name was stored with a
// right-to-left override before these were refused is not rewritten; an
// edit that leaves the name as it is saves, one that changes it to
// another such name is refused, one that cleans it saves.
func TestUpdateKeepsStoredSpoofingName(t *testing.T) {
	f := newClientFixture(t)
	legacy := storage.Client{ID: "old", Name: "Old \u202eelgooG", SecretHash: account.HashSecret("0123456789abcdef"), GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://old.example/cb"}, CreatedAt: f.clock.Now()}
	if err := f.db.CreateClient(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}
	c, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{SkipConsent: ptr(true)})
	if err != nil || c.Name != legacy.Name || !c.SkipConsent {
		t.Fatalf("edit of another field: %q %v", c.Name, err)
	}
	same := legacy.Name
	if c, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{Name: &same}); err != nil || c.Name != legacy.Name {
		t.Fatalf("edit sending the name unchanged: %q %v", c.Name, err)
	}
	other := "Old \u202eelgooG2"
	if _, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{Name: &other}); account.ErrorField(err) != "name" {
		t.Fatalf("rename to another such name: %v", err)
	}
	clean := "Old"
	if c, _, err = f.svc.Clients.UpdateClient(t.Context(), adminActor, "old", "", account.ClientPatch{Name: &clean}); err != nil || c.Name != clean {
		t.Fatalf("clean rename: %q %v", c.Name, err)
	}
}
