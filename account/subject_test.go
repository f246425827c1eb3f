package account

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

func newTestSubjects(t *testing.T, b byte) *Subjects {
	t.Helper()
	s, err := NewSubjects(bytes.Repeat([]byte{b}, SubjectKeyLen))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pairwiseApp(id, sectorURI string, redirects ...string) storage.Client {
	return storage.Client{ID: id, SubjectType: SubjectPairwise, SectorIdentifierURI: sectorURI, RedirectURIs: redirects}
}

func TestPairwiseSubjects(t *testing.T) {
	s := newTestSubjects(t, 1)
	shop := pairwiseApp("shop", "", "https://shop.example/cb")
	shopAdmin := pairwiseApp("shop-admin", "", "https://shop.example/admin/cb") // same host: same sector
	blog := pairwiseApp("blog", "", "https://blog.example/cb")
	// Two hosts of one company share a sector through its sector document.
	crm := pairwiseApp("crm", "https://corp.example/sector.json", "https://crm.corp-apps.example/cb")
	hr := pairwiseApp("hr", "https://corp.example/sector.json", "https://hr.other.example/cb")
	public := storage.Client{ID: "wiki", RedirectURIs: []string{"https://wiki.example/cb"}}

	alice, bob := "u-alice-0000000000000", "u-bob-00000000000000"
	sub := s.Subject(shop, alice)
	if sub == alice || strings.Contains(sub, alice) {
		t.Fatalf("pairwise sub %q shows the user ID", sub)
	}
	if len(sub) > 255 {
		t.Errorf("sub is %d characters, OIDC Core §2 allows 255", len(sub))
	}
	if again := s.Subject(shop, alice); again != sub {
		t.Errorf("the same person at the same app: %q then %q", sub, again)
	}
	if restarted := newTestSubjects(t, 1).Subject(shop, alice); restarted != sub {
		t.Errorf("the same key after a restart gives %q, want %q", restarted, sub)
	}
	if other := newTestSubjects(t, 2).Subject(shop, alice); other == sub {
		t.Error("another key gives the same sub: it would be computable without Keyport's key")
	}
	if got := s.Subject(shopAdmin, alice); got != sub {
		t.Errorf("another app of the same sector (host) gives %q, want %q", got, sub)
	}
	if got := s.Subject(blog, alice); got == sub {
		t.Error("apps of different sectors give the person the same sub")
	}
	if s.Subject(shop, bob) == sub {
		t.Error("two people have the same sub at one app")
	}
	if a, b := s.Subject(crm, alice), s.Subject(hr, alice); a != b {
		t.Errorf("apps sharing a sector_identifier_uri give %q and %q", a, b)
	}
	if s.Subject(crm, alice) == s.Subject(shop, alice) {
		t.Error("the sector document's host is not the sector")
	}
	if got := s.Subject(public, alice); got != alice {
		t.Errorf("a public app gets %q, want the user ID", got)
	}

	// Read back: by the sector it was made for only.
	if u, ok := s.UserOf(shopAdmin, sub); !ok || u != alice {
		t.Errorf("UserOf(same sector) = %q, %v; want %q", u, ok, alice)
	}
	if u, ok := s.UserOf(blog, sub); ok {
		t.Errorf("a sub of another sector was read back as %q", u)
	}
	if u, ok := s.UserOf(shop, alice); ok {
		t.Errorf("a pairwise app's user was found by the raw user ID: %q", u)
	}
	if _, ok := newTestSubjects(t, 2).UserOf(shop, sub); ok {
		t.Error("a sub was read back under another key")
	}
	tampered := []byte(sub)
	tampered[len(tampered)-3] ^= 1
	if _, ok := s.UserOf(shop, string(tampered)); ok {
		t.Error("a changed sub was read back")
	}
	for _, junk := range []string{"", "x", "!!!", strings.Repeat("A", 300)} {
		if _, ok := s.UserOf(shop, junk); ok {
			t.Errorf("junk sub %q was read back", junk)
		}
	}
	if u, ok := s.UserOf(public, alice); !ok || u != alice {
		t.Errorf("UserOf(public) = %q, %v", u, ok)
	}
}

func TestSector(t *testing.T) {
	for _, tt := range []struct {
		c    storage.Client
		want string // "" for an error
	}{
		{pairwiseApp("a", "", "https://RP.example/cb", "https://rp.example:8443/other"), "rp.example"},
		{pairwiseApp("a", "https://sector.example/s.json", "https://a.example/cb", "https://b.example/cb"), "sector.example"},
		{pairwiseApp("a", "", "https://a.example/cb", "https://b.example/cb"), ""},
		{pairwiseApp("a", ""), ""},
		{pairwiseApp("a", "", "com.example.app:/cb"), "com.example.app:"},
		// Loopback redirect URIs (RFC 8252 §7.3) are every native app's:
		// the app is a sector of its own.
		{pairwiseApp("cli", "", "http://127.0.0.1/cb", "http://localhost:8080/cb", "http://[::1]/cb"), "app:cli"},
		{pairwiseApp("cli", "", "http://127.0.0.1/cb", "https://cli.example/cb"), ""},
		{pairwiseApp("cli", "https://sector.example/s.json", "http://127.0.0.1/cb"), "sector.example"},
	} {
		got, err := Sector(tt.c)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Sector(%v, %q) = %q, want an error", tt.c.RedirectURIs, tt.c.SectorIdentifierURI, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Sector(%v, %q) = %q, %v; want %q", tt.c.RedirectURIs, tt.c.SectorIdentifierURI, got, err, tt.want)
		}
	}
}

func TestBuildClientSubjectType(t *testing.T) {
	base := func() NewClient {
		return NewClient{ID: "rp", RedirectURIs: []string{"https://a.example/cb"}, Secret: strings.Repeat("s", 20)}
	}
	for _, tt := range []struct {
		name  string
		edit  func(*NewClient)
		field string // "" for accepted
	}{
		{"public by default", func(*NewClient) {}, ""},
		{"pairwise with one host", func(n *NewClient) { n.SubjectType = SubjectPairwise }, ""},
		{"unknown type", func(n *NewClient) { n.SubjectType = "secret" }, "subject_type"},
		{"several hosts without a sector", func(n *NewClient) {
			n.SubjectType = SubjectPairwise
			n.RedirectURIs = append(n.RedirectURIs, "https://b.example/cb")
		}, "sector_identifier_uri"},
		{"several hosts with a sector", func(n *NewClient) {
			n.SubjectType, n.SectorIdentifierURI = SubjectPairwise, "https://a.example/sector.json"
			n.RedirectURIs = append(n.RedirectURIs, "https://b.example/cb")
		}, ""},
		{"sector over http", func(n *NewClient) {
			n.SubjectType, n.SectorIdentifierURI = SubjectPairwise, "http://a.example/sector.json"
		}, "sector_identifier_uri"},
		{"sector on a public app", func(n *NewClient) { n.SectorIdentifierURI = "https://a.example/sector.json" }, "sector_identifier_uri"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := base()
			tt.edit(&n)
			c, _, err := BuildClient(n)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if n.SubjectType == "" && c.SubjectType != "" {
					t.Errorf("a public app is stored as %q", c.SubjectType)
				}
				return
			}
			var ae *Error
			if err == nil || !errors.As(err, &ae) || ae.Field != tt.field {
				t.Fatalf("err = %v, want one on %s", err, tt.field)
			}
		})
	}
}

// TestPairwiseAvatarPath: the picture URL of a pairwise sub names the
// user sealed for that sub (one per sector, never the user ID), and only
// such a URL reads back to the user.
func TestPairwiseAvatarPath(t *testing.T) {
	s := newTestSubjects(t, 7)
	u := storage.User{ID: "u1234567890abcdef"}
	shop := pairwiseApp("shop", "", "https://shop.example/cb")
	shop2 := pairwiseApp("shop2", "", "https://shop.example/other")
	blog := pairwiseApp("blog", "", "https://blog.example/cb")
	path := func(c storage.Client) string { return s.PairwiseAvatarPath(s.Subject(c, u.ID), u) }
	p := path(shop)
	if strings.Contains(p, u.ID) || p == path(blog) || p != path(shop2) {
		t.Errorf("pairwise avatar paths: shop %q, shop2 %q, blog %q", p, path(shop2), path(blog))
	}
	id := strings.TrimPrefix(p, "/avatar/")
	if got, ok := s.avatarUserOf(id); !ok || got != u.ID {
		t.Errorf("avatarUserOf(%q) = %q %v", id, got, ok)
	}
	tampered := id[:len(id)-2] + "AA"
	if got, ok := s.avatarUserOf(tampered); ok {
		t.Errorf("a tampered avatar ID read back as %q", got)
	}
	if got, ok := newTestSubjects(t, 8).avatarUserOf(id); ok {
		t.Errorf("another key read the avatar ID back as %q", got)
	}
	// The picture's version, which makes caches refetch a new one, is
	// sealed too: the second it was uploaded in is nearly one person's
	// alone, and every sector would see it.
	u.AvatarAt = time.Unix(1733567890, 0)
	if p2 := path(shop); p2 == p || strings.Contains(p2, "1733567890") || strings.Contains(p2, "?") {
		t.Errorf("shop's avatar path after an upload: %q (before %q)", p2, p)
	} else if got, ok := s.avatarUserOf(strings.TrimPrefix(p2, "/avatar/")); !ok || got != u.ID {
		t.Errorf("the new avatar ID read back as %q %v", got, ok)
	}
	// A sub is no avatar ID, nor the other way round.
	if got, ok := s.avatarUserOf(pairwiseAvatarPrefix + s.Subject(shop, u.ID)); ok {
		t.Errorf("a sub read back as an avatar ID: %q", got)
	}
	if got, ok := s.UserOf(shop, strings.TrimPrefix(id, pairwiseAvatarPrefix)); ok {
		t.Errorf("an avatar ID read back as a sub: %q", got)
	}
}

// TestPairwiseLoopbackApps: two native apps whose only redirect URIs are
// on loopback share no host with each other in any meaningful sense: each
// gets subs of its own, not one sector "127.0.0.1" for every such app.
func TestPairwiseLoopbackApps(t *testing.T) {
	s := newTestSubjects(t, 1)
	a := pairwiseApp("cli-a", "", "http://127.0.0.1/cb")
	b := pairwiseApp("cli-b", "", "http://127.0.0.1:9000/callback")
	if sa, sb := s.Subject(a, "u1"), s.Subject(b, "u1"); sa == sb {
		t.Errorf("two loopback apps got the same sub %q", sa)
	}
	if _, ok := s.UserOf(b, s.Subject(a, "u1")); ok {
		t.Error("one loopback app's sub read back at another")
	}
}

// A pairwise app without redirect URIs (one that signs people in by the
// device flow only) is told it needs a sector document, not that its
// redirect URIs have several hosts.
func TestPairwiseAppWithoutRedirectURIs(t *testing.T) {
	_, _, err := BuildClient(NewClient{ID: "tv", SubjectType: SubjectPairwise, Public: true,
		GrantTypes: []string{GrantDeviceCode}})
	if ErrorField(err) != "sector_identifier_uri" || !strings.Contains(ErrorMessage(err), "without redirect URIs") {
		t.Fatalf("a pairwise app without redirect URIs: %v", err)
	}
}
