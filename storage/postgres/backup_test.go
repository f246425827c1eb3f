package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// fillEveryTable writes, through the store, at least one row into every
// table, with text that COPY has to escape (tabs, newlines, backslashes,
// non-ASCII) and binary data with every byte value.
func fillEveryTable(t *testing.T, d *DB, now time.Time) {
	t.Helper()
	ctx := t.Context()
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	later := now.Add(time.Hour)
	u := storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", Name: "Ali\tce\nGroß \\ \"Ü\" \u2603",
		Groups: []string{"staff"}, Identities: []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "ext-1"}},
		CreatedAt: now, UpdatedAt: now, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}
	must(d.CreateUser(ctx, u), "create alice")
	must(d.CreateUser(ctx, storage.User{ID: "u2", Username: "bob", CreatedAt: now, UpdatedAt: now}), "create bob")
	must(d.DeleteUser(ctx, "u2", now.Add(30*24*time.Hour)), "delete bob, reserving his name")
	must(d.CreateGroup(ctx, storage.Group{ID: "g1", Name: "staff", CreatedAt: now, UpdatedAt: now}), "create a group")
	must(d.PutSetting(ctx, "k", []byte("v\x00\n\\")), "put a setting")
	must(d.PutSigningKey(ctx, storage.SigningKey{ID: "k1", Algorithm: "RS256", SealedKey: []byte{0, 1, 2}, PublicJWK: []byte(`{"kty":"RSA"}`), CreatedAt: now}), "put a key")
	must(d.PutDirectory(ctx, storage.Directory{ID: "d1", Type: "ldap", Settings: []byte(`{"url":"ldap://x"}`), CreatedAt: now, UpdatedAt: now}), "put a directory")
	png := make([]byte, 256<<10) // large enough to fill the backup's buffer mid-copy
	for i := range png {
		png[i] = byte(i)
	}
	must(d.PutAvatar(ctx, storage.Avatar{UserID: "u1", ContentType: "image/png", Data: png, UpdatedAt: now}), "put an avatar")
	must(d.CreateClient(ctx, storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now}), "create a client")
	must(d.CreateCredential(ctx, storage.Credential{ID: "c1", UserID: "u1", Kind: storage.KindAppPassword, Name: "mail", Hash: "hc1", CreatedAt: now}), "create a credential")
	must(d.CreateSession(ctx, storage.Session{ID: "s1", UserID: "u1", AuthTime: now, CreatedAt: now, ExpiresAt: later}), "create a session")
	must(d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}, nil), "put a grant")
	must(d.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "o1", Purpose: "setup", UserID: "u1", CreatedAt: now, ExpiresAt: later}), "create a one-time token")
	must(d.AddLoginAttempt(ctx, storage.LoginAttempt{ID: "la1", UserID: "u1", Login: "alice", Time: now, IP: "192.0.2.1", Method: "password", Success: true}), "add a login attempt")
	must(d.UpdateThrottles(ctx, []string{"ip:192.0.2.1"}, func(th storage.Throttle) (storage.Throttle, error) {
		th.Failures, th.ExpiresAt = []time.Time{now}, later
		return th, nil
	}), "update a throttle")
	must(d.AppendAudit(ctx, storage.AuditEvent{ID: "e1", Time: now, Type: "user.blocked", ActorKind: "system", TargetUserID: "u1"},
		storage.OutboxMessage{ID: "m1", Kind: "mail", Payload: []byte(`{"to":"alice"}`), CreatedAt: now}), "append an audit event with a message")
	must(d.CreateWebhook(ctx, storage.Webhook{ID: "w1", URL: "https://hooks.example/w1", SealedSecret: []byte("sealed"), CreatedAt: now, UpdatedAt: now}), "create a webhook")
	_, err := d.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m1", At: now, Attempt: 1, Status: 200}, nil)
	must(err, "record a delivery")
	r1 := storage.RefreshToken{Hash: "h-r1", ID: "r1", FamilyID: "f1", ClientID: "app", UserID: "u1", Scopes: []string{"openid"}, AuthTime: now, CreatedAt: now, ExpiresAt: later, IdleExpiresAt: later}
	must(d.CreateTokens(ctx, storage.AccessToken{ID: "a1", ClientID: "app", UserID: "u1", Subject: "u1", FamilyID: "f1", CreatedAt: now, ExpiresAt: later}, &r1), "create tokens")
	r2 := r1
	r2.Hash, r2.ID = "h-r2", "r2"
	must(d.RotateRefreshToken(ctx, "h-r1", r2, storage.AccessToken{ID: "a2", ClientID: "app", UserID: "u1", Subject: "u1", FamilyID: "f1", CreatedAt: now, ExpiresAt: later}), "rotate")
	for _, id := range []string{"ar1", "ar2"} {
		_, err := d.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, ClientID: "app", RedirectURI: "https://app.example/cb", State: "a\tb\\c",
			Scopes: []string{"openid"}, ResponseType: "code", UserID: "u1", Completed: true, Origin: "192.0.2.1", CreatedAt: now, ExpiresAt: later},
			storage.PendingLimits{PerOrigin: 10, Total: 10})
		must(err, "create "+id)
		must(d.IssueCode(ctx, id, "code-"+id, later), "issue the code of "+id)
	}
	_, err = d.RedeemCode(ctx, "code-ar2", "app", storage.IssuedTokens{AccessTokenID: "a9"})
	must(err, "redeem code-ar2")
	must(d.CreateDeviceAuthorization(ctx, storage.DeviceAuthorization{DeviceCodeHash: "dh1", UserCode: "BCDFGHJK", ClientID: "app",
		Scopes: []string{"openid"}, State: storage.DevicePending, CreatedAt: now, ExpiresAt: later, Interval: 5 * time.Second}, 0), "create a device authorization")
}

// tableRows returns every table's rows as text, sorted, by table.
func tableRows(t *testing.T, d *DB) map[string][]string {
	t.Helper()
	ctx := t.Context()
	tables, err := backupTables(ctx, d.pool)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, tb := range tables {
		var rows []string
		sql := fmt.Sprintf("SELECT coalesce(array_agg(x::text ORDER BY x::text), '{}') FROM %s x", pgx.Identifier{tb.name}.Sanitize())
		if err := d.pool.QueryRow(ctx, sql).Scan(&rows); err != nil {
			t.Fatalf("read %s: %v", tb.name, err)
		}
		out[tb.name] = rows
	}
	return out
}

// Backup, then Restore into an empty database: every table holds the
// same rows, the restored store works (its sequences go on past the
// restored rows), and writes made while the backup ran are not in it.
func TestBackupRestoreRoundTrip(t *testing.T) {
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	src := openTest(t, clock)
	fillEveryTable(t, src, now)
	before := tableRows(t, src)
	for name, rows := range before {
		if len(rows) == 0 {
			t.Errorf("table %s is empty: add a record of it to fillEveryTable", name)
		}
	}

	// A write that commits while the backup runs: the first time the
	// backup hands bytes on (its buffer filled, mid-copy), a user and a
	// session are added.
	var buf bytes.Buffer
	wrote := false
	w := writerFunc(func(p []byte) (int, error) {
		if !wrote {
			wrote = true
			if err := src.CreateUser(t.Context(), storage.User{ID: "late", Username: "late", CreatedAt: now, UpdatedAt: now}); err != nil {
				return 0, err
			}
			if err := src.CreateSession(t.Context(), storage.Session{ID: "late", UserID: "late", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				return 0, err
			}
		}
		return buf.Write(p)
	})
	start := time.Now()
	if err := src.Backup(t.Context(), w); err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Logf("backup of %d tables: %d bytes in %v", len(before), buf.Len(), time.Since(start))
	if !wrote || buf.Len() < 256<<10 {
		t.Fatalf("the backup wrote %d bytes", buf.Len())
	}
	header, _, _ := strings.Cut(buf.String(), "\n")
	if header != fmt.Sprintf("keyport-postgres-backup 1 schema %d", migrations[len(migrations)-1].version) {
		t.Fatalf("header %q", header)
	}
	backup := buf.Bytes()

	dst := openTest(t, clock)
	if err := dst.Restore(t.Context(), bytes.NewReader(backup)); err != nil {
		t.Fatalf("restore: %v", err)
	}
	after := tableRows(t, dst)
	for name, rows := range before {
		if !slices.Equal(after[name], rows) {
			t.Errorf("table %s after the round trip:\n got %q\nwant %q", name, after[name], rows)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d tables restored, %d backed up", len(after), len(before))
	}
	ctx := t.Context()
	if _, err := dst.GetUser(ctx, "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a user added while the backup ran is in it: %v", err)
	}
	if _, err := dst.GetSession(ctx, "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a session added while the backup ran is in it: %v", err)
	}

	// The restored store works: records read back, a code is redeemed,
	// and the next delivery gets a sequence number after the restored one.
	got, err := dst.GetUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := src.GetUser(ctx, "u1")
	if got.Name != want.Name || got.Username != "alice" || len(got.Identities) != 1 {
		t.Errorf("alice after the round trip: %+v", got)
	}
	if a, err := dst.RedeemCode(ctx, "code-ar1", "app", storage.IssuedTokens{}); err != nil || a.ID != "ar1" {
		t.Errorf("redeem a restored code: %+v, %v", a, err)
	}
	if _, err := dst.RedeemCode(ctx, "code-ar2", "app", storage.IssuedTokens{}); !errors.Is(err, storage.ErrTokenReused) {
		t.Errorf("replay a code redeemed before the backup: %v, want ErrTokenReused", err)
	}
	if _, err := dst.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m2", At: now.Add(time.Minute), Attempt: 1, Status: 500}, nil); err != nil {
		t.Fatalf("record a delivery after the restore: %v", err)
	}
	ds, err := dst.ListWebhookDeliveries(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].MessageID != "m2" {
		t.Errorf("deliveries after the restore, newest first: %+v", ds)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A copy that is cut short, of another schema or into a database that is
// not empty is refused, and the database is left as it was.
func TestRestoreRefusals(t *testing.T) {
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	src := openTest(t, clock)
	fillEveryTable(t, src, now)
	var buf bytes.Buffer
	if err := src.Backup(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	backup := buf.Bytes()
	version := migrations[len(migrations)-1].version
	end := bytes.LastIndex(backup, []byte("end "))
	empty := func(d *DB) {
		t.Helper()
		for name, rows := range tableRows(t, d) {
			if len(rows) != 0 {
				t.Fatalf("table %s has %d rows after a refused restore", name, len(rows))
			}
		}
	}
	for name, c := range map[string]struct {
		backup []byte
		want   error
	}{
		"cut in a table":      {backup[:len(backup)/2], io.ErrUnexpectedEOF},
		"without its end":     {backup[:end], io.ErrUnexpectedEOF},
		"end miscounted":      {append(backup[:end:end], "end 3\n"...), storage.ErrInvalid},
		"trailing bytes":      {append(slices.Clone(backup), "table users id\n"...), storage.ErrInvalid},
		"another schema":      {bytes.Replace(backup, fmt.Appendf(nil, "schema %d\n", version), []byte("schema 999\n"), 1), storage.ErrInvalid},
		"another format":      {bytes.Replace(backup, []byte("keyport-postgres-backup 1 "), []byte("keyport-postgres-backup 2 "), 1), storage.ErrInvalid},
		"not a backup":        {[]byte("PGDMP\x01\x0e\x00"), storage.ErrInvalid},
		"an unknown table":    {bytes.Replace(backup, []byte("\ntable users "), []byte("\ntable no_such_table "), 1), storage.ErrInvalid},
		"a row that is wrong": {bytes.Replace(backup, []byte("\ntable settings name value\n"), []byte("\ntable settings name value\nx\n"), 1), nil},
	} {
		t.Run(name, func(t *testing.T) {
			dst := openTest(t, clock)
			err := dst.Restore(t.Context(), bytes.NewReader(c.backup))
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("restore: %v, want %v", err, c.want)
			}
			empty(dst)
		})
	}

	// Into a database that holds records: refused, and they stay.
	dst := openTest(t, clock)
	if err := dst.CreateUser(t.Context(), storage.User{ID: "other", Username: "other", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(t.Context(), bytes.NewReader(backup)); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("restore into a database with a user: %v, want ErrConflict", err)
	}
	if _, err := dst.GetUser(t.Context(), "other"); err != nil {
		t.Fatalf("the user already there: %v", err)
	}
	if _, err := dst.GetUser(t.Context(), "u1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused restore loaded alice: %v", err)
	}
}

// Backup stops when its context ends.
func TestBackupStopsWithItsContext(t *testing.T) {
	d := openTest(t, time.Now)
	fillEveryTable(t, d, time.Now().UTC())
	ctx, cancel := context.WithCancel(t.Context())
	w := writerFunc(func(p []byte) (int, error) {
		cancel()
		return len(p), nil
	})
	if err := d.Backup(ctx, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("backup after its context ended: %v, want context.Canceled", err)
	}
}
