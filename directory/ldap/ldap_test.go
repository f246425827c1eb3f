package ldap

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/internal/slapdtest"
)

const fixtures = `dn: cn=keyport,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
cn: keyport
sn: service
uid: keyport-service
userPassword: service-secret

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
givenName: Alice
sn: Liddell
displayName: Alice L.
mail: alice@example.org
mobile: +4915123456789
userPassword: wonderland

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Builder
mail: bob@example.org
userPassword: can-we-fix-it

dn: uid=mallory,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: mallory
cn: Mallory
sn: Disabled
mail: mallory@example.org
employeeType: disabled
userPassword: mallory-pass

dn: uid=jurgen,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: jurgen
cn:: SsO8cmdlbiBHcsOkw59l
givenName:: SsO8cmdlbg==
sn:: R3LDpMOfZQ==
mail: jurgen@example.org
jpegPhoto:: /9j/4AAQSkZJRgABAQAAAQABAAD/2Q==
userPassword: grüße-passwort

dn: cn=staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=org
member: uid=jurgen,ou=people,dc=example,dc=org

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=people,dc=example,dc=org
`

func newSource(t *testing.T, srv *slapdtest.Server, mutate func(*Config)) *Source {
	t.Helper()
	cfg := Config{
		ID: "corp", Name: "Corporate LDAP", URL: srv.URL,
		BindDN: "cn=keyport,ou=people,dc=example,dc=org", BindPassword: "service-secret",
		UserBaseDN: "ou=people,dc=example,dc=org", UserFilter: "(&(objectClass=inetOrgPerson)(mail=*))",
		LoginAttributes: []string{"uid", "mail"}, DisabledFilter: "(employeeType=disabled)",
		GroupBaseDN: "ou=groups,dc=example,dc=org", GroupFilter: "(objectClass=groupOfNames)",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := cfg.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestLogin(t *testing.T) {
	srv := slapdtest.Start(t, fixtures)
	s := newSource(t, srv, nil)
	ctx := context.Background()

	id, err := s.Login(ctx, "alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	if id.ID == "" || id.ID == "uid=alice,ou=people,dc=example,dc=org" || id.Username != "alice" || id.Email != "alice@example.org" || !id.EmailVerified ||
		id.GivenName != "Alice" || id.FamilyName != "Liddell" || id.DisplayName != "Alice L." || id.PhoneNumber != "+4915123456789" ||
		!slices.Equal(id.Groups, []string{"admins", "staff"}) {
		t.Fatalf("alice: %+v", id)
	}
	// By email too, in any case the server matches.
	if byMail, err := s.Login(ctx, "alice@example.org", "wonderland"); err != nil || byMail.ID != id.ID {
		t.Fatalf("login by mail: %v %+v", err, byMail)
	}
	// Non-ASCII names, a photo, and a password with umlauts.
	j, err := s.Login(ctx, "jurgen", "grüße-passwort")
	if err != nil || j.GivenName != "Jürgen" || j.FamilyName != "Gräße" || j.DisplayName != "Jürgen Gräße" || len(j.Picture) == 0 || !slices.Equal(j.Groups, []string{"staff"}) {
		t.Fatalf("jurgen: %v %+v", err, j)
	}
	if b, err := s.Login(ctx, "bob", "can-we-fix-it"); err != nil || len(b.Groups) != 0 {
		t.Fatalf("bob: %v %+v", err, b)
	}
}

func TestLoginRefusals(t *testing.T) {
	srv := slapdtest.Start(t, fixtures)
	s := newSource(t, srv, nil)
	ctx := context.Background()
	cases := map[string][2]string{
		"wrong password":       {"alice", "not-wonderland"},
		"unknown user":         {"nobody", "wonderland"},
		"empty password":       {"alice", ""},
		"empty username":       {"", "wonderland"},
		"wildcard":             {"*", "wonderland"},
		"wildcard prefix":      {"al*", "wonderland"},
		"filter injection":     {"*)(uid=*", "wonderland"},
		"injection with OR":    {"alice)(|(uid=*", "wonderland"},
		"NUL byte":             {"alice\x00", "wonderland"},
		"service account name": {"keyport-service", "service-secret"}, // filtered out: no mail
	}
	for name, c := range cases {
		if _, err := s.Login(ctx, c[0], c[1]); !errors.Is(err, directory.ErrInvalidCredentials) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.Login(ctx, "mallory", "mallory-pass"); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("disabled user: %v", err)
	}
	// A wildcard that would match several users must not pick one.
	if _, err := s.Login(ctx, "*@example.org", "wonderland"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("wildcard over mail: %v", err)
	}
}

func TestUsersAndLookup(t *testing.T) {
	srv := slapdtest.Start(t, fixtures)
	s := newSource(t, srv, nil)
	ctx := context.Background()
	users, err := s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"alice", "bob", "jurgen", "mallory"}) {
		t.Fatalf("users: %v", names)
	}
	alice := users[slices.IndexFunc(users, func(u directory.Identity) bool { return u.Username == "alice" })]
	got, err := s.Lookup(ctx, alice.ID)
	if err != nil || got.Username != "alice" {
		t.Fatalf("lookup: %v %+v", err, got)
	}
	if _, err := s.Lookup(ctx, "no-such-id"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("lookup of a vanished user: %v", err)
	}
	mallory := users[slices.IndexFunc(users, func(u directory.Identity) bool { return u.Username == "mallory" })]
	if !mallory.Disabled || alice.Disabled {
		t.Errorf("disabled marks from the listing: mallory %v, alice %v", mallory.Disabled, alice.Disabled)
	}
	if _, err := s.Lookup(ctx, mallory.ID); !errors.Is(err, directory.ErrDisabled) {
		t.Errorf("lookup of a disabled user: %v", err)
	}
	rep, err := s.Test(ctx)
	if err != nil || rep.Users != 4 || rep.Sample == nil {
		t.Errorf("test connection: %v %+v", err, rep)
	}
}

func TestFailures(t *testing.T) {
	srv := slapdtest.Start(t, fixtures)
	ctx := context.Background()

	bad := newSource(t, srv, func(c *Config) { c.BindPassword = "wrong" })
	if _, err := bad.Test(ctx); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "bind as the service account") {
		t.Errorf("bad service password: %v", err)
	}
	s := newSource(t, srv, nil)
	if _, err := s.Login(ctx, "alice", "wonderland"); err != nil {
		t.Fatal(err)
	}
	// slapd stops mid-run: a clear error, no panic; it comes back, so do we.
	srv.Stop()
	// The connection test dials its own connection, so it names the step
	// that fails now even while the pool still holds one from before.
	if _, err := s.Test(ctx); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "dial") {
		t.Errorf("test with slapd stopped: %v", err)
	}
	if _, err := s.Login(ctx, "alice", "wonderland"); !errors.Is(err, directory.ErrUnavailable) {
		t.Errorf("with slapd stopped: %v", err)
	}
	srv.Restart(t)
	if _, err := s.Login(ctx, "alice", "wonderland"); err != nil {
		t.Errorf("after slapd restarted: %v", err)
	}
	down := newSource(t, srv, func(c *Config) { c.URL = "ldap://127.0.0.1:1" })
	if _, err := down.Test(ctx); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "dial") {
		t.Errorf("nothing listening: %v", err)
	}
	for name, c := range map[string]Config{
		"no id":      {URL: "ldap://x", UserBaseDN: "dc=x"},
		"bad scheme": {ID: "x", URL: "http://x", UserBaseDN: "dc=x"},
		"no base":    {ID: "x", URL: "ldap://x"},
		"bad filter": {ID: "x", URL: "ldap://x", UserBaseDN: "dc=x", UserFilter: "(uid=alice"},
		"tls twice":  {ID: "x", URL: "ldaps://x", UserBaseDN: "dc=x", StartTLS: true},
		"missing CA": {ID: "x", URL: "ldaps://x", UserBaseDN: "dc=x", CACertFile: "/nonexistent.pem"},
	} {
		if _, err := c.Open(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPooledConnectionsUnderLoad(t *testing.T) {
	srv := slapdtest.Start(t, fixtures)
	s := newSource(t, srv, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Go(func() {
			if _, err := s.Login(context.Background(), "alice", "wonderland"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(s.pool); n == 0 || n > 4 {
		t.Errorf("%d pooled service connections after a burst, want 1..4", n)
	}
}

func TestFilterEscaping(t *testing.T) {
	s := &Source{cfg: Config{UserFilter: "(objectClass=person)", LoginAttributes: []string{"uid", "mail"}}}
	got := s.userFilter("*)(uid=*\x00")
	want := `(&(objectClass=person)(|(uid=\2a\29\28uid=\2a\00)(mail=\2a\29\28uid=\2a\00)))`
	if got != want {
		t.Errorf("filter %s, want %s", got, want)
	}
}

func TestTLS(t *testing.T) {
	srv := slapdtest.StartWithTLS(t, fixtures)
	ctx := context.Background()
	ldaps := newSource(t, srv, func(c *Config) { c.URL = srv.LDAPSURL; c.CACertFile = srv.CAFile })
	if _, err := ldaps.Login(ctx, "alice", "wonderland"); err != nil {
		t.Fatalf("LDAPS with the test CA: %v", err)
	}
	starttls := newSource(t, srv, func(c *Config) { c.StartTLS = true; c.CACertFile = srv.CAFile })
	if _, err := starttls.Login(ctx, "alice", "wonderland"); err != nil {
		t.Fatalf("StartTLS with the test CA: %v", err)
	}
	// Without the CA the certificate is refused, and the error says TLS.
	untrusted := newSource(t, srv, func(c *Config) { c.URL = srv.LDAPSURL })
	if _, err := untrusted.Test(ctx); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(strings.ToLower(err.Error()), "certificate") {
		t.Errorf("LDAPS with an unknown CA: %v", err)
	}
	untrustedStart := newSource(t, srv, func(c *Config) { c.StartTLS = true })
	if _, err := untrustedStart.Test(ctx); !errors.Is(err, directory.ErrUnavailable) || !strings.Contains(err.Error(), "StartTLS") {
		t.Errorf("StartTLS with an unknown CA: %v", err)
	}
	skip := newSource(t, srv, func(c *Config) { c.URL = srv.LDAPSURL; c.InsecureSkipVerify = true })
	if _, err := skip.Login(ctx, "alice", "wonderland"); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
}

// BenchmarkLogin measures a directory sign-in (search with the pooled
// service connection, then a bind as the user on its own connection), and
// the same without the pool for comparison.
func BenchmarkLogin(b *testing.B) {
	srv := slapdtest.Start(b, fixtures)
	for _, pooled := range []bool{true, false} {
		name := "pooled"
		if !pooled {
			name = "dial-per-search"
		}
		b.Run(name, func(b *testing.B) {
			cfg := Config{ID: "corp", URL: srv.URL, BindDN: "cn=keyport,ou=people,dc=example,dc=org", BindPassword: "service-secret",
				UserBaseDN: "ou=people,dc=example,dc=org", LoginAttributes: []string{"uid"}}
			if !pooled {
				cfg.PoolSize = 1
			}
			s, err := cfg.Open()
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !pooled {
						s.Close() // empty the pool: every search dials and binds again
					}
					if _, err := s.Login(context.Background(), "alice", "wonderland"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Bad settings name their config.toml key, so the admin page and the API
// point at the field; the message is the one config.toml errors have had.
func TestOpenNamesTheBadSetting(t *testing.T) {
	for key, c := range map[string]Config{
		"id":           {URL: "ldap://x", UserBaseDN: "dc=x"},
		"url":          {ID: "x", URL: "http://x", UserBaseDN: "dc=x"},
		"user_base_dn": {ID: "x", URL: "ldap://x"},
		"user_filter":  {ID: "x", URL: "ldap://x", UserBaseDN: "dc=x", UserFilter: "(uid=alice"},
		"group_filter": {ID: "x", URL: "ldap://x", UserBaseDN: "dc=x", GroupFilter: "objectClass=group"},
		"start_tls":    {ID: "x", URL: "ldaps://x", UserBaseDN: "dc=x", StartTLS: true},
	} {
		_, err := c.Open()
		var se *directory.SettingsError
		if !errors.As(err, &se) || se.Key() != key || !strings.Contains(err.Error(), key+": ") {
			t.Errorf("%s: %v, want a problem with %s", key, err, key)
		}
	}
}
