package account_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

var cliActor = account.Actor{Kind: account.ActorCLI}

// importLines joins JSON lines into an import file.
func importLines(t testing.TB, users ...any) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		if s, ok := u.(string); ok {
			b.WriteString(s + "\n")
			continue
		}
		line, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	return b.String()
}

// auditCount counts the audit events of one type.
func auditCount(t *testing.T, db storage.Store, typ string) []storage.AuditEvent {
	t.Helper()
	events, _, err := db.ListAudit(t.Context(), storage.AuditQuery{Types: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// TestImportedHashesSignIn imports a user per foreign hash, signs each in
// through Authenticate, and checks that the stored hash is argon2id with
// the current parameters afterwards.
func TestImportedHashesSignIn(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := t.Context()
	hashes := foreignHashes(t)
	var users []any
	for i, h := range hashes {
		users = append(users, account.ExportedUser{Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.com", i), PasswordHash: h.hash})
	}
	rep, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(importLines(t, users...)), account.ImportOptions{})
	if err != nil || rep.Created != len(hashes) {
		t.Fatalf("import: %+v, %v", rep, err)
	}
	if ev := auditCount(t, db, "users.imported"); len(ev) != 1 || ev[0].Changes[0].After != fmt.Sprint(len(hashes)) || ev[0].ActorKind != account.ActorCLI {
		t.Fatalf("audit events: %+v", ev)
	}
	for i, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			login := fmt.Sprintf("user%d", i)
			if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: login, Password: h.password + "!", IP: "192.0.2.9"}); account.ErrorCode(err) != account.Unauthorized {
				t.Fatalf("wrong password: %v", err)
			}
			before, _ := db.GetUserByLogin(ctx, login)
			if before.PasswordHash != h.hash {
				t.Fatalf("a failed sign-in changed the hash: %s", before.PasswordHash)
			}
			u, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: login, Password: h.password, IP: "192.0.2.9"})
			if err != nil {
				t.Fatalf("sign-in: %v", err)
			}
			after, _ := db.GetUser(ctx, u.ID)
			if !strings.HasPrefix(after.PasswordHash, "$argon2id$v=19$m=7168,t=5,p=1$") {
				t.Fatalf("hash after sign-in: %s", after.PasswordHash)
			}
			if ok, rehash, err := account.VerifyPassword(h.password, after.PasswordHash, testArgon); !ok || rehash || err != nil {
				t.Fatalf("new hash: ok=%v rehash=%v err=%v", ok, rehash, err)
			}
		})
	}
}

// TestImportReportsEveryBadLine: a dry run and a real run of a file with
// bad lines both list every problem with its line and field, and write
// nothing.
func TestImportReportsEveryBadLine(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := t.Context()
	if _, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "existing", Email: "existing@example.com", Password: "long enough password 1"}); err != nil {
		t.Fatal(err)
	}
	bc, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	good := func(name string) account.ExportedUser {
		return account.ExportedUser{Username: name, Email: name + "@example.com", PasswordHash: string(bc)}
	}
	withHash := func(name, hash string) account.ExportedUser { u := good(name); u.PasswordHash = hash; return u }
	file := importLines(t,
		good("ok1"), // 1
		`{"username": "x", "email": "x@example.com", "totp_secret": "AAAA"}`, // 2
		`{"username": "broken"`, // 3
		account.ExportedUser{Username: "-bad name", Email: "not an address", PhoneNumber: "12345", Locale: "fr"}, // 4
		good("OK1"),      // 5: duplicate of line 1
		good("existing"), // 6
		withHash("cost15", "$2b$15$"+string(bc[7:])),                                                        // 7
		withHash("scrypt", "$scrypt$ln=21,r=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"), // 8
		withHash("sha512", "$6$rounds=5000$saltsalt$abc"),                                                   // 9
		`{"username": "groups", "email": "groups@example.com", "groups": "admins"}`,                         // 10
		"", // 11: blank, skipped
		`{"username": "long", "email": "long@example.com", "name": "`+strings.Repeat("a", 70<<10)+`"}`, // 12
		account.ExportedUser{Username: "ident", Email: "ident@example.com", Source: "corp", PasswordHash: string(bc),
			Identities: []storage.Identity{{Connection: "corp", Provider: "ldap"}}}, // 13
		good("ok2"), // 14
	)
	want := []account.ImportProblem{
		{Line: 2, Field: "totp_secret"},
		{Line: 3},
		{Line: 4, Field: "username"}, {Line: 4, Field: "email"}, {Line: 4, Field: "locale"}, {Line: 4, Field: "phone_number"},
		{Line: 5, Field: "username"}, {Line: 5, Field: "email"},
		{Line: 6, Field: "username"}, {Line: 6, Field: "email"},
		{Line: 7, Field: "password_hash"},
		{Line: 8, Field: "password_hash"},
		{Line: 9, Field: "password_hash"},
		{Line: 10, Field: "groups"},
		{Line: 12},
		{Line: 13, Field: "identities"}, {Line: 13, Field: "password_hash"},
	}
	for _, dry := range []bool{true, false} {
		rep, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(file), account.ImportOptions{DryRun: dry})
		if account.ErrorCode(err) != account.Invalid || !strings.Contains(account.ErrorMessage(err), "11 of 13 lines") {
			t.Fatalf("dry run %v: %v", dry, err)
		}
		var got []account.ImportProblem
		for _, p := range rep.Problems {
			if p.Message == "" {
				t.Errorf("problem without a message: %+v", p)
			}
			got = append(got, account.ImportProblem{Line: p.Line, Field: p.Field})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("dry run %v: problems\n got %v\nwant %v\n%v", dry, got, want, rep.Problems)
		}
		if rep.Created != 0 || rep.Users != 13 || rep.DryRun != dry {
			t.Errorf("dry run %v: report %+v", dry, rep)
		}
		if n, _ := db.CountUsers(ctx); n != 1 {
			t.Fatalf("dry run %v: %d users stored", dry, n)
		}
	}
	for _, p := range []string{"also on line 1", "belongs to an existing user", "cost 15", "ln=21", "unknown format", "unknown field", "longer than 64 KiB"} {
		rep, _ := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(file), account.ImportOptions{DryRun: true})
		found := false
		for _, pr := range rep.Problems {
			found = found || strings.Contains(pr.String(), p)
		}
		if !found {
			t.Errorf("no problem says %q: %v", p, rep.Problems)
		}
	}
	if ev := auditCount(t, db, "users.imported"); len(ev) != 0 {
		t.Fatalf("a refused import was audited: %+v", ev)
	}
}

// TestImportAllOrNothing: one bad line keeps every good one out; without
// it, all are created; a dry run of a good file writes nothing.
func TestImportAllOrNothing(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := t.Context()
	var lines []any
	for i := range 5 {
		lines = append(lines, account.ExportedUser{Username: fmt.Sprintf("user%d", i), Email: fmt.Sprintf("user%d@example.com", i)})
	}
	bad := append(append([]any{}, lines...), account.ExportedUser{Username: "user9", Email: "user9@example"})
	if _, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(importLines(t, bad...)), account.ImportOptions{}); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("file with a bad line: %v", err)
	}
	if n, _ := db.CountUsers(ctx); n != 0 {
		t.Fatalf("%d users stored from a file with a bad line", n)
	}
	rep, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(importLines(t, lines...)), account.ImportOptions{DryRun: true})
	if err != nil || rep.Created != 0 || rep.Users != 5 {
		t.Fatalf("dry run of a good file: %+v %v", rep, err)
	}
	if n, _ := db.CountUsers(ctx); n != 0 {
		t.Fatalf("%d users stored by a dry run", n)
	}
	rep, err = svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(importLines(t, lines...)), account.ImportOptions{})
	if err != nil || rep.Created != 5 {
		t.Fatalf("good file: %+v %v", rep, err)
	}
	if n, _ := db.CountUsers(ctx); n != 5 {
		t.Fatalf("%d users stored from a good file", n)
	}
	if _, err := svc.Users.ImportUsers(ctx, account.Actor{Kind: account.ActorUser, UserID: "x", ReadOnly: true}, strings.NewReader(""), account.ImportOptions{}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("read-only import: %v", err)
	}
	if _, err := svc.Users.ExportUsers(ctx, account.Actor{Kind: account.ActorUser, UserID: "x", ReadOnly: true}, &bytes.Buffer{}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("read-only export: %v", err)
	}
	// A person who is not an administrator (or no longer one) may neither
	// export (it holds every password hash) nor import, whatever the
	// credential: the rules do not rely on the HTTP layers' check.
	u0, err := db.GetUserByLogin(ctx, "user0")
	if err != nil {
		t.Fatal(err)
	}
	notAdmin := account.Actor{Kind: account.ActorUser, UserID: u0.ID}
	var out bytes.Buffer
	if _, err := svc.Users.ExportUsers(ctx, notAdmin, &out); account.ErrorCode(err) != account.Forbidden || out.Len() != 0 {
		t.Fatalf("export by a non-admin: %v, %d bytes written", err, out.Len())
	}
	more := importLines(t, account.ExportedUser{Username: "user7", Email: "user7@example.com"})
	if _, err := svc.Users.ImportUsers(ctx, notAdmin, strings.NewReader(more), account.ImportOptions{}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("import by a non-admin: %v", err)
	}
	if n, _ := db.CountUsers(ctx); n != 5 {
		t.Fatalf("%d users after a non-admin's import, want 5", n)
	}
}

// fullUser has every field of storage.User set, exported or not.
func fullUser(i int, now time.Time) storage.User {
	return storage.User{
		ID: fmt.Sprintf("auth0|user%03d", i), Username: fmt.Sprintf("Person%03d", i), Email: fmt.Sprintf("person%03d@example.com", i), EmailVerified: true,
		Name: "Ünïcode Näme", GivenName: "Given", FamilyName: "Family", Nickname: "Nick", Locale: "de", Zoneinfo: "Europe/Berlin",
		PhoneNumber: "+4915123456789", PhoneVerified: true, Groups: []string{"staff", "ops"}, Admin: i%2 == 0,
		CreatedAt: now.Add(-48 * time.Hour), UpdatedAt: now.Add(-time.Hour),
		RecoveryEmail: "backup@example.org", Theme: "dark", Roles: []string{"editor"}, AvatarAt: now,
		Source: "", CustomData: map[string]string{"team": "blue"},
		Identities:   []storage.Identity{{Connection: "google", Provider: "oidc", UserID: fmt.Sprintf("g-%d", i), IsSocial: true}},
		PasswordHash: "$2b$04$S1u/uFzQEaWS0YWTEk1i4u3sZbYzsdM7T9zV8HGIiF9m/eoLZh9vW", Blocked: i%3 == 0,
		LastIP: "192.0.2.1", LastLogin: now, LoginsCount: 7, AppMetadata: map[string]string{"plan": "pro"},
		PasswordChangedAt: now.Add(-24 * time.Hour), TOTPSecret: []byte("sealed"), TOTPPending: []byte("pending"), TOTPLastStep: 9,
		RecoveryCodes: []string{"abc"}, AllowedNetworks: []string{"10.0.0.0/8"}, VerifiedEmails: []string{fmt.Sprintf("person%03d@example.com", i)},
	}
}

// TestExportImportRoundTrip: an export imported into an empty store and
// exported again is the same file, with every exported field set in it;
// what is not exported (second factors, counters) is not in it.
func TestExportImportRoundTrip(t *testing.T) {
	src, srcDB := newService(t, nil)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	dirUser := storage.User{ID: "dir-1", Username: "CN=Some One", Source: "corp", Groups: []string{"ldap-group"}, CreatedAt: now, UpdatedAt: now,
		Identities: []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "uuid-1"}}}
	if err := srcDB.CreateUser(ctx, dirUser); err != nil {
		t.Fatal(err)
	}
	// A system account has no password: its line carries "system" instead.
	sysUser := storage.User{ID: "sys-1", Username: "backup-job", Email: "backup@example.com", System: true, CreatedAt: now, UpdatedAt: now}
	if err := srcDB.CreateUser(ctx, sysUser); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := srcDB.CreateUser(ctx, fullUser(i, now)); err != nil {
			t.Fatal(err)
		}
	}
	var first bytes.Buffer
	n, err := src.Users.ExportUsers(ctx, cliActor, &first)
	if err != nil || n != 5 {
		t.Fatalf("export: %d, %v", n, err)
	}
	if !strings.Contains(first.String(), `"username":"backup-job","email":"backup@example.com","system":true`) {
		t.Errorf("the system account's line lacks system: %s", first.String())
	}
	for _, secret := range []string{"totp", "sealed", "pending", "recovery_codes", "last_ip", "logins_count", "avatar", "verified_emails"} {
		if strings.Contains(first.String(), secret) {
			t.Errorf("the export holds %q:\n%s", secret, first.String())
		}
	}
	// The full users' lines set every field of ExportedUser: a field the
	// export forgets fails here.
	var full map[string]any
	for _, line := range strings.Split(strings.TrimSpace(first.String()), "\n") {
		if strings.Contains(line, `"id":"auth0|user000"`) {
			if err := json.Unmarshal([]byte(line), &full); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range reflect.VisibleFields(reflect.TypeFor[account.ExportedUser]()) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if _, ok := full[name]; !ok && name != "source" && name != "blocked" && name != "system" {
			t.Errorf("the export of a full user lacks %q: %v", name, full)
		}
	}

	dst, dstDB := newService(t, nil)
	rep, err := dst.Users.ImportUsers(ctx, cliActor, bytes.NewReader(first.Bytes()), account.ImportOptions{})
	if err != nil || rep.Created != 5 {
		t.Fatalf("import: %+v %v", rep, err)
	}
	var second bytes.Buffer
	if _, err := dst.Users.ExportUsers(ctx, cliActor, &second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Fatalf("the round trip changed the export:\n%s\n%s", first.String(), second.String())
	}
	got, err := dstDB.GetUser(ctx, "auth0|user001")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.TOTPSecret) != 0 || len(got.RecoveryCodes) != 0 || got.LoginsCount != 0 || !got.AvatarAt.IsZero() {
		t.Errorf("not exported, yet imported: %+v", got)
	}
	if _, err := dstDB.GetUserByIdentity(ctx, "corp", "uuid-1"); err != nil {
		t.Errorf("the directory user's identity: %v", err)
	}
	if ev := auditCount(t, srcDB, "users.exported"); len(ev) != 1 || ev[0].Changes[0].After != "5" {
		t.Errorf("export audit: %+v", ev)
	}
}

// An imported argon2 hash may ask for about a second of work per sign-in,
// not the minutes config.toml's bounds would allow: such a line is refused
// naming the hash, and the file imports nothing.
func TestImportBoundsArgon2Work(t *testing.T) {
	svc, db := newService(t, nil)
	salt, key := "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	costly := account.ExportedUser{Username: "costly", Email: "costly@example.com", PasswordHash: "$argon2id$v=19$m=1048576,t=64,p=4$" + salt + "$" + key}
	fine := account.ExportedUser{Username: "fine", Email: "fine@example.com", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$" + salt + "$" + key}
	rep, err := svc.Users.ImportUsers(t.Context(), cliActor, strings.NewReader(importLines(t, fine, costly)), account.ImportOptions{})
	if account.ErrorCode(err) != account.Invalid || len(rep.Problems) != 1 || rep.Problems[0].Line != 2 || rep.Problems[0].Field != "password_hash" {
		t.Fatalf("costly hash: %+v %v", rep, err)
	}
	if n, _ := db.CountUsers(t.Context()); n != 0 {
		t.Errorf("%d users stored", n)
	}
	if _, err := svc.Users.ImportUsers(t.Context(), cliActor, strings.NewReader(importLines(t, fine)), account.ImportOptions{}); err != nil {
		t.Errorf("a hash within the bound: %v", err)
	}
}

// IDs Keyport makes (NewID, base64url) may start with - or _: users
// exported with such IDs import again, under the same IDs; a leading dot
// is still refused.
func TestImportKeepsKeyportIDs(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := t.Context()
	file := importLines(t,
		account.ExportedUser{ID: "-dash0123456789ab", Username: "dash", Email: "dash@example.com"},
		account.ExportedUser{ID: "_under0123456789a", Username: "under", Email: "under@example.com"})
	if rep, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(file), account.ImportOptions{}); err != nil || rep.Created != 2 {
		t.Fatalf("import: %+v %v", rep, err)
	}
	for _, id := range []string{"-dash0123456789ab", "_under0123456789a"} {
		if _, err := db.GetUser(ctx, id); err != nil {
			t.Errorf("user %s: %v", id, err)
		}
	}
	if _, err := svc.Users.ImportUsers(ctx, cliActor, strings.NewReader(importLines(t, account.ExportedUser{ID: "..", Username: "dots", Email: "dots@example.com"})), account.ImportOptions{}); err == nil {
		t.Error("an ID of two dots was imported")
	}
}
