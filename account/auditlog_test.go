package account_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/storage"
)

// The audit log as account writes it: each security event once, with who
// acted, on whom, for which app and from where, and never a secret.

const (
	auditIP    = "192.0.2.44"
	auditAgent = "Mozilla/5.0 (audit test)"
)

// requestCtx is the context the portal gives a request from auditIP.
func requestCtx() context.Context {
	return account.WithRequest(context.Background(), auditIP, auditAgent)
}

// auditTrail is the whole audit log, oldest first.
func auditTrail(t *testing.T, db storage.Store) []storage.AuditEvent {
	t.Helper()
	var all []storage.AuditEvent
	q := storage.AuditQuery{Limit: storage.MaxAuditLimit}
	for {
		page, next, err := db.ListAudit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			// The fixtures' app registration (client.created) is not
			// what these tests are about; clients_test.go checks it.
			if !strings.HasPrefix(e.Type, "client.") {
				all = append(all, e)
			}
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// checkEvents compares events with want in any order (the test clocks
// stand still, so the log orders events of one instant by their random
// IDs), ignoring the IDs and times the log fills in (which must be set).
func checkEvents(t *testing.T, got, want []storage.AuditEvent) {
	t.Helper()
	var bare []storage.AuditEvent
	for _, e := range got {
		if e.ID == "" || e.Time.IsZero() {
			t.Errorf("event without ID or time: %+v", e)
		}
		e.ID, e.Time = "", time.Time{}
		bare = append(bare, e)
	}
	byContent := func(a, b storage.AuditEvent) int {
		return strings.Compare(fmt.Sprintf("%+v", a), fmt.Sprintf("%+v", b))
	}
	want = slices.Clone(want)
	slices.SortFunc(bare, byContent)
	slices.SortFunc(want, byContent)
	if !reflect.DeepEqual(bare, want) {
		t.Fatalf("audit events:\n%s\nwant:\n%s", eventLines(bare), eventLines(want))
	}
}

func eventLines(es []storage.AuditEvent) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "  %+v\n", e)
	}
	return b.String()
}

// noSecrets fails when any secret appears in the stored form of an audit
// event, or anywhere in the database file.
func noSecrets(t *testing.T, db storage.Store, secrets ...string) {
	t.Helper()
	var file bytes.Buffer
	if err := db.Backup(context.Background(), &file); err != nil {
		t.Fatal(err)
	}
	for _, e := range auditTrail(t, db) {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if s == "" {
				t.Fatal("an empty secret to look for")
			}
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("audit event %s holds the secret %q: %s", e.Type, s, raw)
			}
		}
	}
	for _, s := range secrets {
		if bytes.Contains(file.Bytes(), []byte(s)) {
			t.Errorf("the database holds the secret %q", s)
		}
	}
}

// TestAuditSignInEvents: a failed and a successful browser sign-in for an
// app, through the flow as the portal drives it, each write one event
// naming the app, the address and the browser; the failure names its
// reason and the login name as typed, and no event holds the password.
func TestAuditSignInEvents(t *testing.T) {
	f := newFlowFixture(t)
	ctx := requestCtx()
	a := f.request(t)
	if _, err := f.flow.Get(ctx, a.ID, flowBrowser); err != nil { // as the portal's loginSubmit does
		t.Fatal(err)
	}
	const wrong = "not the right password"
	creds := account.Credentials{Login: "Alice", Password: wrong, IP: auditIP, UserAgent: auditAgent}
	if _, _, err := f.svc.SignIn.PasswordStep(ctx, creds); account.ErrorCode(err) != account.Unauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	long := strings.Repeat("x", 100) + "\n"
	if _, _, err := f.svc.SignIn.PasswordStep(ctx, account.Credentials{Login: long, Password: wrong, IP: auditIP, UserAgent: auditAgent}); account.ErrorCode(err) != account.Unauthorized {
		t.Fatalf("unknown account: %v", err)
	}
	creds.Password = securityPassword
	u, newHash, err := f.svc.SignIn.PasswordStep(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	v := f.visitor()
	v.IP, v.UserAgent = auditIP, auditAgent
	if _, err := f.flow.FirstStepPassed(ctx, account.FirstStep{Request: a, User: u, NewHash: newHash, MayOweSecondFactor: true, Visitor: v}); err != nil {
		t.Fatal(err)
	}
	checkEvents(t, auditTrail(t, f.db), []storage.AuditEvent{
		{Type: account.EventSignInFailed, ActorKind: account.ActorAnonymous, TargetUserID: f.user.ID, ClientID: f.app.ID,
			IP: auditIP, UserAgent: auditAgent, Reason: "wrong password", Method: "pwd", Login: "Alice"},
		{Type: account.EventSignInFailed, ActorKind: account.ActorAnonymous, ClientID: f.app.ID,
			IP: auditIP, UserAgent: auditAgent, Reason: "unknown account", Method: "pwd", Login: strings.Repeat("x", 64) + "…"},
		{Type: account.EventSignInSucceeded, ActorKind: account.ActorUser, ActorID: f.user.ID, TargetUserID: f.user.ID, ClientID: f.app.ID,
			IP: auditIP, UserAgent: auditAgent, Method: "pwd", Login: "alice"},
	})
	noSecrets(t, f.db, wrong, securityPassword)
}

// TestAuditSignInEventIsPartOfTheSignIn: the successful sign-in's event
// is written in the sign-in's own write (one commit), not after it: a
// sign-in that cannot be written leaves no event, and one that is
// written always has its event.
func TestAuditSignInEventIsPartOfTheSignIn(t *testing.T) {
	f := newFlowFixture(t)
	ctx := requestCtx()
	before := auditTrail(t, f.db)
	// Deleted meanwhile: RecordSignIn refuses the whole sign-in.
	gone := f.user
	if err := f.db.DeleteUser(ctx, gone.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.svc.SignIn.FinishSignIn(ctx, gone, "", account.Credentials{IP: auditIP}, []string{"pwd"}); err == nil {
		t.Fatal("the sign-in of a deleted user was recorded")
	}
	if got := auditTrail(t, f.db); len(got) != len(before) {
		t.Fatalf("a sign-in that was not written left events: %+v", got[len(before):])
	}
}

// TestAuditSecurityEvents: every self-service security change, and the
// command line's user changes, write one event with the right actor,
// target, app, address and browser, and none holds a secret.
func TestAuditSecurityEvents(t *testing.T) {
	f := newFlowFixture(t)
	ctx := requestCtx()
	u := f.user
	self := func(typ string, changes ...storage.AuditChange) storage.AuditEvent {
		return storage.AuditEvent{Type: typ, ActorKind: account.ActorUser, ActorID: u.ID, TargetUserID: u.ID, IP: auditIP, UserAgent: auditAgent, Changes: changes}
	}
	var want []storage.AuditEvent
	var secrets []string

	const newPassword = "a brand new passphrase 42"
	if err := f.svc.Credentials.ChangePassword(ctx, u, "", securityPassword, newPassword, auditIP, auditAgent); err != nil {
		t.Fatal(err)
	}
	want = append(want, self(account.EventPasswordChanged))
	secrets = append(secrets, securityPassword, newPassword)
	u, _ = f.db.GetUser(ctx, u.ID)

	enrolment, err := f.svc.Credentials.BeginTOTP(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = f.db.GetUser(ctx, u.ID)
	codes, err := f.svc.Credentials.ConfirmTOTP(ctx, u, codeAt(t, enrolment.Secret, f.clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, self(account.EventTOTPEnabled))
	secrets = append(secrets, enrolment.Secret, codes[0])
	u, _ = f.db.GetUser(ctx, u.ID)
	if codes, err = f.svc.Credentials.RegenerateRecoveryCodes(ctx, u); err != nil {
		t.Fatal(err)
	}
	want = append(want, self(account.EventRecoveryCodesRegenerated))
	secrets = append(secrets, codes...)
	u, _ = f.db.GetUser(ctx, u.ID)
	if err := f.svc.Credentials.DisableTOTP(ctx, u, newPassword, auditIP, auditAgent); err != nil {
		t.Fatal(err)
	}
	want = append(want, self(account.EventTOTPDisabled))
	u, _ = f.db.GetUser(ctx, u.ID)

	token, tok, err := f.svc.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: "backup", Scope: account.ScopeReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Credentials.RevokeAPIToken(ctx, u, tok.ID); err != nil {
		t.Fatal(err)
	}
	want = append(want, self(account.EventAPITokenCreated, storage.AuditChange{Field: "name", After: "backup"}, storage.AuditChange{Field: "scope", After: account.ScopeReadOnly}),
		self(account.EventAPITokenRevoked, storage.AuditChange{Field: "name", After: "backup"}))
	appPassword, ap, err := f.svc.Credentials.CreateAppPassword(ctx, u, "mail", f.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Credentials.RevokeAppPassword(ctx, u, ap.ID); err != nil {
		t.Fatal(err)
	}
	created, revoked := self(account.EventAppPasswordCreated, storage.AuditChange{Field: "name", After: "mail"}), self(account.EventAppPasswordRevoked, storage.AuditChange{Field: "name", After: "mail"})
	created.ClientID, revoked.ClientID = f.app.ID, f.app.ID
	want = append(want, created, revoked)
	secrets = append(secrets, token, appPassword, account.HashSecret(token))

	// Consent, at the end of a sign-in for the app.
	a := f.request(t)
	if _, err := f.flow.Consented(ctx, a, u.ID); err != nil {
		t.Fatal(err)
	}
	consent := self(account.EventConsentGranted, storage.AuditChange{Field: "scopes", After: "openid profile"})
	consent.ClientID = f.app.ID
	want = append(want, consent)

	// Sign out everywhere, from the security page: the request carries the
	// user's session.
	secret, _, err := f.svc.SignIn.StartSession(ctx, u, []string{"pwd"}, auditIP, auditAgent)
	if err != nil {
		t.Fatal(err)
	}
	page := requestCtx()
	if _, _, err := f.svc.SignIn.ResumeSession(page, secret); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SignIn.SignOutEverywhere(page, u.ID); err != nil {
		t.Fatal(err)
	}
	ended := self(account.EventSessionsEnded)
	ended.Reason = "sessions ended: 1, tokens revoked: 0"
	want = append(want, ended)

	// The command line: no request, so the actor is the CLI.
	cli := context.Background()
	const cliPassword = "set from the command line"
	if err := f.svc.Users.SetPassword(cli, "alice", cliPassword); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Users.SetBlocked(cli, "alice", true); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Users.SetBlocked(cli, "alice", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Users.SetEmailVerified(cli, "alice", true); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, cliPassword)
	byCLI := func(typ string, changes ...storage.AuditChange) storage.AuditEvent {
		return storage.AuditEvent{Type: typ, ActorKind: account.ActorCLI, TargetUserID: u.ID, Changes: changes}
	}
	want = append(want, byCLI(account.EventPasswordChanged), byCLI(account.EventUserBlocked), byCLI(account.EventUserUnblocked),
		byCLI(account.EventUserEmailVerified, storage.AuditChange{Field: "email_verified", Before: "false", After: "true"}))

	checkEvents(t, auditTrail(t, f.db), want)
	noSecrets(t, f.db, secrets...)
}

// TestAuditPasskeyEvents: adding and removing a passkey write one event
// each, naming the passkey.
func TestAuditPasskeyEvents(t *testing.T) {
	f := newPasskeyFixture(t, testIssuer)
	f.ctx = requestCtx()
	k := newSoftKey(t, testIssuer)
	c := f.enrol(f.alice, k, "YubiKey")
	if err := f.svc.Credentials.DeletePasskey(f.ctx, f.alice, c.ID); err != nil {
		t.Fatal(err)
	}
	named := storage.AuditChange{Field: "name", After: "YubiKey"}
	checkEvents(t, auditTrail(t, f.db), []storage.AuditEvent{
		{Type: account.EventPasskeyAdded, ActorKind: account.ActorUser, ActorID: f.alice.ID, TargetUserID: f.alice.ID, IP: auditIP, UserAgent: auditAgent, Changes: []storage.AuditChange{named}},
		{Type: account.EventPasskeyRemoved, ActorKind: account.ActorUser, ActorID: f.alice.ID, TargetUserID: f.alice.ID, IP: auditIP, UserAgent: auditAgent, Changes: []storage.AuditChange{named}},
	})
}

// TestAuditDirectoryEvents: an admin's directory changes on the admin
// page, and a scheduled change, name the directory and who made it; the
// settings changed are listed before and after, the secret only as
// changed.
func TestAuditDirectoryEvents(t *testing.T) {
	clock := newTestClock()
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: clock.Now, Policy: account.Policy{
		Issuer: "https://id.example.org", MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour}})
	admin, err := svc.Users.CreateUser(context.Background(), account.NewUser{Username: "root", Email: "root@example.org", Password: securityPassword, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := svc.SignIn.StartSession(context.Background(), admin, []string{"pwd"}, auditIP, auditAgent)
	if err != nil {
		t.Fatal(err)
	}
	ctx := requestCtx()
	if _, _, err := svc.SignIn.ResumeSession(ctx, secret); err != nil {
		t.Fatal(err)
	}
	const clientSecret = "upstream-client-secret-123"
	cfg := upstreamConfig("partner", clientSecret)
	if err := svc.Directories.SaveUpstream(ctx, cfg, true); err != nil {
		t.Fatal(err)
	}
	cfg.Name, cfg.ClientSecret = "Partner SSO", ""
	if err := svc.Directories.SaveUpstream(ctx, cfg, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.Directories.SetDirectoryDisabled(ctx, "partner", true); err != nil {
		t.Fatal(err)
	}
	if err := svc.Directories.SetDirectoryDisabled(account.WithActor(context.Background(), account.SystemActor), "partner", false); err != nil {
		t.Fatal(err)
	}
	if err := svc.Directories.DeleteDirectory(ctx, "partner"); err != nil {
		t.Fatal(err)
	}
	got := auditTrail(t, db)
	if len(got) != 5 {
		t.Fatalf("events: %s", eventLines(got))
	}
	// Creating lists every setting as new, with no secret in it.
	i := slices.IndexFunc(got, func(e storage.AuditEvent) bool { return e.Type == account.EventDirectoryCreated })
	if i < 0 || len(got[i].Changes) < 3 || got[i].Changes[len(got[i].Changes)-1] != (storage.AuditChange{Field: "secret", After: "(changed)"}) {
		t.Fatalf("events: %s", eventLines(got))
	}
	got[i].Changes = nil
	byAdmin := func(typ string, changes ...storage.AuditChange) storage.AuditEvent {
		return storage.AuditEvent{Type: typ, ActorKind: account.ActorUser, ActorID: admin.ID, TargetID: "partner", IP: auditIP, UserAgent: auditAgent, Changes: changes}
	}
	checkEvents(t, got, []storage.AuditEvent{
		byAdmin(account.EventDirectoryCreated),
		byAdmin(account.EventDirectoryUpdated, storage.AuditChange{Field: "Name", Before: `"Partner"`, After: `"Partner SSO"`}),
		byAdmin(account.EventDirectoryDisabled),
		{Type: account.EventDirectoryEnabled, ActorKind: account.ActorSystem, TargetID: "partner"},
		byAdmin(account.EventDirectoryDeleted),
	})
	noSecrets(t, db, clientSecret, securityPassword)
}

// TestAuditListAndExport: the query side checks its input, naming the
// field, lets only administrators read, and exports a log larger than a
// page as JSON Lines, newest first.
func TestAuditListAndExport(t *testing.T) {
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 0)
	ctx := context.Background()
	admin, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "root", Email: "root@example.org", Password: securityPassword, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	plain := newSecurityUser(t, svc, "bob")
	const n = 2*storage.MaxAuditLimit + 7 // three pages
	for i := range n {
		clock.Add(time.Millisecond)
		e := storage.AuditEvent{ID: fmt.Sprintf("ev%05d", i), Time: clock.Now(), Type: account.EventUserBlocked, ActorKind: account.ActorSystem, TargetUserID: plain.ID, Reason: fmt.Sprint(i)}
		if err := db.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	asAdmin := account.Actor{Kind: account.ActorUser, UserID: admin.ID}

	var out bytes.Buffer
	written, err := svc.Audit.Export(ctx, asAdmin, storage.AuditQuery{TargetUserID: plain.ID}, &out)
	if err != nil || written != n {
		t.Fatalf("export: %d events, %v", written, err)
	}
	sc := bufio.NewScanner(&out)
	lines := 0
	for sc.Scan() {
		var e storage.AuditEvent
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("line %d is not an event: %v: %s", lines+1, err, sc.Text())
		}
		if want := fmt.Sprintf("ev%05d", n-1-lines); e.ID != want {
			t.Fatalf("line %d is %s, want %s (newest first)", lines+1, e.ID, want)
		}
		lines++
	}
	if lines != n {
		t.Fatalf("%d lines, want %d", lines, n)
	}

	page, next, err := svc.Audit.List(ctx, asAdmin, storage.AuditQuery{Limit: 10})
	if err != nil || len(page) != 10 || next == "" {
		t.Fatalf("first page: %d events, next %q, %v", len(page), next, err)
	}
	if _, _, err := svc.Audit.List(ctx, account.Actor{Kind: account.ActorCLI}, storage.AuditQuery{Limit: 10, Cursor: next}); err != nil {
		t.Fatalf("second page: %v", err)
	}

	bad := []struct {
		name  string
		q     storage.AuditQuery
		field string
	}{
		{"cursor of another query", storage.AuditQuery{Cursor: next, Types: []string{"user.blocked"}}, "cursor"},
		{"malformed cursor", storage.AuditQuery{Cursor: "!!"}, "cursor"},
		{"huge cursor", storage.AuditQuery{Cursor: strings.Repeat("A", 4096)}, "cursor"},
		{"negative limit", storage.AuditQuery{Limit: -1}, "limit"},
		{"limit too large", storage.AuditQuery{Limit: storage.MaxAuditLimit + 1}, "limit"},
		{"time range backwards", storage.AuditQuery{From: clock.Now(), To: clock.Now().Add(-time.Hour)}, "from"},
		{"type not a type", storage.AuditQuery{Types: []string{"User Blocked"}}, "type"},
		{"too many types", storage.AuditQuery{Types: strings.Split(strings.Repeat("a,", 60)+"a", ",")}, "type"},
		{"actor with NUL", storage.AuditQuery{ActorID: "a\x00b"}, "actor"},
		{"target too long", storage.AuditQuery{TargetUserID: strings.Repeat("u", storage.MaxAuditID+1)}, "target_user"},
	}
	for _, tc := range bad {
		_, _, err := svc.Audit.List(ctx, asAdmin, tc.q)
		if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != tc.field {
			t.Errorf("%s: %v (field %q), want invalid %s", tc.name, err, account.ErrorField(err), tc.field)
		}
	}
	for name, who := range map[string]account.Actor{
		"a user who is not an admin": {Kind: account.ActorUser, UserID: plain.ID},
		"an unknown user":            {Kind: account.ActorUser, UserID: "nobody"},
		"nobody":                     {Kind: account.ActorAnonymous},
	} {
		if _, _, err := svc.Audit.List(ctx, who, storage.AuditQuery{}); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s: %v, want forbidden", name, err)
		}
		if n, err := svc.Audit.Export(ctx, who, storage.AuditQuery{}, &out); account.ErrorCode(err) != account.Forbidden || n != 0 {
			t.Errorf("export by %s: %d, %v", name, n, err)
		}
	}
}

// upstreamConfig is an upstream OIDC provider's settings as the admin
// page saves them (building it dials nothing).
func upstreamConfig(id, secret string) oidcsource.Config {
	return oidcsource.Config{ID: id, Name: "Partner", Issuer: "https://sso.example.com", ClientID: "keyport", ClientSecret: secret}
}
