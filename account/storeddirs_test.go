package account_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
)

// Directories stored by earlier versions (settings as JSON with Go field
// names, the secret sealed for its directory) open through the source
// registry; a stored directory of a type Keyport does not know is skipped
// with an error that names it, and so is one whose secret does not open.
func TestStoredDirectoriesOfEveryTypeLoad(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	var logs bytes.Buffer
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: now, Log: slog.New(slog.NewTextHandler(&logs, nil)), Policy: account.Policy{
		Issuer: "https://id.example.org", MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour}})
	sealer, err := seal.New(account.TestSealKey)
	if err != nil {
		t.Fatal(err)
	}
	put := func(id, typ, settings string, sealed []byte) {
		t.Helper()
		if err := db.PutDirectory(ctx, storage.Directory{ID: id, Type: typ, Settings: []byte(settings), SealedSecret: sealed, CreatedAt: now(), UpdatedAt: now()}); err != nil {
			t.Fatal(err)
		}
	}
	put("corp", "ldap", `{"ID":"corp","Name":"Corp","URL":"ldap://127.0.0.1:1","StartTLS":false,"BindDN":"cn=svc","BindPassword":"",`+
		`"UserBaseDN":"dc=example,dc=org","LoginAttributes":["uid"],"GroupNameAttr":"cn","Timeout":3000000000,"PoolSize":0}`,
		sealer.Seal([]byte("bind-secret"), account.BindSealPurpose("corp")))
	put("partner", "oidc", `{"ID":"partner","Name":"Partner","Issuer":"https://sso.example.com","ClientID":"keyport","ClientSecret":"",`+
		`"Scopes":["openid"],"RedirectURL":"https://old.example.org/login/upstream/callback","HandlesSecondFactor":true,"HTTPClient":null}`,
		sealer.Seal([]byte("client-secret"), account.BindSealPurpose("partner")))
	put("ad", "activedirectory", `{}`, nil)
	put("stolen", "oidc", `{"Issuer":"https://sso.example.com","ClientID":"keyport"}`, sealer.Seal([]byte("s"), account.BindSealPurpose("partner")))
	if err := svc.Directories.LoadStoredDirectories(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range svc.Directories.DirectoryStatuses(ctx) {
		got = append(got, st.ID+"/"+st.Provider+"/"+st.Name)
	}
	if strings.Join(got, " ") != "corp/ldap/Corp partner/oidc/Partner" {
		t.Fatalf("directories in force: %v", got)
	}
	for _, want := range []string{`directory \"ad\": unknown type \"activedirectory\"`, `directory \"stolen\": client secret: `} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs.String())
		}
	}
	corp, err := svc.Directories.StoredDirectory(ctx, "corp")
	if err != nil || corp.GroupNameAttr != "cn" || corp.Timeout != 3*time.Second || corp.BindPassword != "" {
		t.Fatalf("StoredDirectory: %+v, %v", corp, err)
	}
	partner, err := svc.Directories.StoredUpstream(ctx, "partner")
	if err != nil || !partner.HandlesSecondFactor || partner.ClientSecret != "" {
		t.Fatalf("StoredUpstream: %+v, %v", partner, err)
	}
	if _, err := svc.Directories.StoredDirectory(ctx, "partner"); account.ErrorCode(err) != account.NotFound {
		t.Fatalf("an upstream as an LDAP directory: %v", err)
	}

	// A change without a secret keeps the sealed one; the settings are
	// stored as before, without it, and with the callback of now.
	partner.Name = "Partner SSO"
	if err := svc.Directories.SaveUpstream(ctx, partner, false); err != nil {
		t.Fatal(err)
	}
	d, err := db.GetDirectory(ctx, "partner")
	if err != nil {
		t.Fatal(err)
	}
	if secret, err := sealer.Open(d.SealedSecret, account.BindSealPurpose("partner")); err != nil || string(secret) != "client-secret" {
		t.Fatalf("kept secret %q, %v", secret, err)
	}
	want := `{"ID":"partner","Name":"Partner SSO","Issuer":"https://sso.example.com","ClientID":"keyport","ClientSecret":"",` +
		`"Scopes":["openid"],"RedirectURL":"https://id.example.org/login/upstream/callback","UsernameClaim":"","EmailClaim":"",` +
		`"GivenNameClaim":"","FamilyNameClaim":"","NameClaim":"","GroupsClaim":"","ButtonLabel":"","LinkByVerifiedEmail":false,` +
		`"CreateUsers":false,"HandlesSecondFactor":true,"HTTPClient":null}`
	if string(d.Settings) != want {
		t.Fatalf("stored settings\n%s\nwant\n%s", d.Settings, want)
	}
	if err := svc.Directories.SaveDirectory(ctx, corp, false); err != nil {
		t.Fatal(err)
	}
	corp.ID = "partner"
	if err := svc.Directories.SaveDirectory(ctx, corp, false); account.ErrorMessage(err) != "This directory is not an LDAP directory." {
		t.Fatalf("LDAP settings over an upstream: %v", err)
	}
}

// A replica reloads the stored directories on every settings notice and
// every 30 s: loading what is already in force keeps the sources open
// (the same values, not new connections), and a changed directory or
// on/off switch builds them again.
func TestLoadingUnchangedDirectoriesReopensNothing(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: now, Policy: account.Policy{
		Issuer: "https://id.example.org", MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour}})
	sealer, err := seal.New(account.TestSealKey)
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string) {
		t.Helper()
		settings := `{"ID":"partner","Name":"` + name + `","Issuer":"https://sso.example.com","ClientID":"keyport","Scopes":["openid"]}`
		if err := db.PutDirectory(ctx, storage.Directory{ID: "partner", Type: "oidc", Settings: []byte(settings),
			SealedSecret: sealer.Seal([]byte("client-secret"), account.BindSealPurpose("partner")), CreatedAt: now(), UpdatedAt: now()}); err != nil {
			t.Fatal(err)
		}
	}
	load := func() directory.CallbackSource {
		t.Helper()
		if err := svc.Directories.LoadStoredDirectories(ctx); err != nil {
			t.Fatal(err)
		}
		return svc.Directories.UpstreamProvider("partner")
	}
	put("Partner")
	first := load()
	if first == nil {
		t.Fatal("the stored directory is not in force")
	}
	if again := load(); again != first {
		t.Error("loading the same directories again reopened them")
	}
	put("Partner 2")
	changed := load()
	if changed == first || changed.Name() != "Partner 2" {
		t.Errorf("a changed directory was not built again: %v", changed.Name())
	}
	if err := svc.Directories.SetDirectoryDisabled(ctx, "partner", true); err != nil {
		t.Fatal(err)
	}
	load()
	if !svc.Directories.DirectoryDisabled("partner") {
		t.Error("the switch turned off is not in force after a load")
	}
	if err := db.PutSetting(ctx, "directory-disabled:partner", []byte("0")); err != nil { // another replica turns it on
		t.Fatal(err)
	}
	load()
	if svc.Directories.DirectoryDisabled("partner") {
		t.Error("a switch changed in the store (by another replica) is not in force after a load")
	}
}
