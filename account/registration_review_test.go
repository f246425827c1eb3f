package account

import (
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// Review of the re-approval of self-registered apps (c60095b) and of
// application_type (72abc4a).

// registerHeldForReview stores a registered app as RegisterClient would
// with a --hold-for-approval token, and approves it as an administrator.
func registerHeldForReview(t *testing.T, svc *Service, db storage.Store, id, token string, m ClientMetadata) storage.Client {
	t.Helper()
	ctx := t.Context()
	c := storage.Client{ID: id}
	if err := applyClientMetadata(&c, m); err != nil {
		t.Fatal(err)
	}
	if err := normalizeClient(&c, true, nil); err != nil {
		t.Fatal(err)
	}
	if usesSecret(c) {
		c.SecretHash = HashSecret("secret")
	}
	c.RegistrationAccessTokenHash, c.PendingApproval = HashSecret(token), true
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	approved, err := svc.Registration.ApproveClient(ctx, SystemActor, id, "")
	if err != nil || approved.PendingApproval {
		t.Fatalf("approve %s: %+v, %v", id, approved, err)
	}
	return approved
}

// legacyApproval makes approved app id as the release before ApprovedAt
// left it, neither the approval time nor the application type kept, and
// returns its approval as the audit log holds it.
func legacyApproval(t *testing.T, db storage.Store, id string) storage.AuditEvent {
	t.Helper()
	ctx := t.Context()
	if _, err := db.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		c.ApprovedAt, c.ApplicationType = time.Time{}, ""
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	events, _, err := db.ListAudit(ctx, storage.AuditQuery{Types: []string{AuditClientApproved}, Limit: 10})
	if err != nil || len(events) != 1 || events[0].ClientID != id {
		t.Fatalf("the approval in the audit log: %+v, %v", events, err)
	}
	return events[0]
}

// An app an administrator approved before this release has no ApprovedAt
// (the field is new; the approval is only in the audit log as
// client.approved). Such an app is indistinguishable from one registered
// without a hold, so its approval is never asked for: it changes its
// redirect URIs (or keys, or grant types) through RFC 7592 and stays
// approved. Every app approved before the upgrade escapes re-approval.
func TestReviewApprovedBeforeUpgradeIsHeldAgain(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	const token = RegistrationAccessTokenPrefix + "legacy-token"
	base := ClientMetadata{
		RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{GrantAuthorizationCode},
		ClientName: "Legacy", Scope: "openid profile",
	}
	approved := registerHeldForReview(t, svc, db, "legacy", token, base)
	legacyApproval(t, db, "legacy")

	m := base
	m.RedirectURIs = []string{"https://attacker.example/cb"}
	got, err := svc.Registration.UpdateRegisteredClient(ctx, "legacy", token, "192.0.2.1", "", m)
	if err != nil {
		t.Fatal(err)
	}
	if !got.PendingApproval {
		t.Errorf("an app approved before ApprovedAt existed (approved %v per the audit log) changed its redirect URIs to %v and stays approved",
			approved.ApprovedAt.Format(time.RFC3339), got.RedirectURIs)
	}
}

// The update of an app from before the upgrade stores what the search of
// the audit log found, the approval's time and the type the app has shown,
// even when it changes nothing: the log is searched once per such app, and
// a later change is still held.
func TestLegacyApprovalKeptAfterOneSearch(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	const token = RegistrationAccessTokenPrefix + "legacy-token"
	base := ClientMetadata{RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{GrantAuthorizationCode}, ClientName: "Legacy"}
	registerHeldForReview(t, svc, db, "legacy", token, base)
	approval := legacyApproval(t, db, "legacy")
	c, err := db.GetClient(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Registration.UpdateRegisteredClient(ctx, "legacy", token, "192.0.2.1", "", ClientMetadataOf(c)); err != nil {
		t.Fatal(err)
	}
	kept, err := db.GetClient(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if !kept.ApprovedAt.Equal(approval.Time) || kept.ApplicationType != "web" || kept.PendingApproval {
		t.Errorf("after an update that changes nothing: approved %v (the log says %v), type %q, held %v",
			kept.ApprovedAt, approval.Time, kept.ApplicationType, kept.PendingApproval)
	}
	m := base
	m.RedirectURIs = []string{"https://elsewhere.example/cb"}
	if got, err := svc.Registration.UpdateRegisteredClient(ctx, "legacy", token, "192.0.2.1", "", m); err != nil || !got.PendingApproval {
		t.Errorf("a change after the approval was kept: held %v, %v", got.PendingApproval, err)
	}
}

// application_type binds a registered app's redirect URIs wherever they
// change. An administrator's edit keeps the URIs it leaves as they were
// unchecked (kept), and kept is the redirect URIs and the post-logout
// URIs together: a post-logout URI (never checked against the app's type,
// rightly) moved into redirect_uris of a native app escapes the type's
// rule, where the same URI typed fresh is refused.
func TestReviewAdminEditKeepsApplicationTypeRule(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	const token = RegistrationAccessTokenPrefix + "native-token"
	native := ClientMetadata{
		RedirectURIs: []string{"com.example.app:/cb"}, GrantTypes: []string{GrantAuthorizationCode},
		TokenEndpointAuthMethod: AuthNone, ClientName: "Native", ApplicationType: AppTypeNative,
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
	}
	registerHeldForReview(t, svc, db, "native", token, native)

	fresh := []string{"com.example.app:/cb", "https://app.example/other"}
	if _, _, err := svc.Clients.UpdateClient(ctx, SystemActor, "native", "", ClientPatch{RedirectURIs: &fresh}); err == nil {
		t.Fatal("a native app got an https redirect URI from an administrator's edit")
	}
	moved := []string{"com.example.app:/cb", "https://app.example/bye"}
	if c, _, err := svc.Clients.UpdateClient(ctx, SystemActor, "native", "", ClientPatch{RedirectURIs: &moved}); err == nil {
		t.Errorf("a native app got the https redirect URI %q, its post-logout URI, from an administrator's edit: %v", moved[1], c.RedirectURIs)
	}
}

// The usual RFC 7592 update is the registration read back (GET), a field
// changed, and sent (PUT). Nothing in what GET says reads back as a
// change, for every kind of app: the registration sent back as it was
// keeps the approval (a new name would not: it holds the app again).
func TestReviewEchoedRegistrationKeepsApproval(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	for id, m := range map[string]ClientMetadata{
		"web": {RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken}, Scope: "openid email"},
		"native": {RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1/cb"}, TokenEndpointAuthMethod: AuthNone,
			ApplicationType: AppTypeNative, GrantTypes: []string{GrantAuthorizationCode, GrantDeviceCode}},
		"machine": {GrantTypes: []string{GrantClientCredentials}, TokenEndpointAuthMethod: AuthClientSecretPost},
		"pairwise": {RedirectURIs: []string{"https://app.example/cb"}, SubjectType: SubjectPairwise,
			PostLogoutRedirectURIs: []string{"https://app.example/bye"}, BackchannelLogoutURI: "https://app.example/bc"},
	} {
		token := RegistrationAccessTokenPrefix + id
		m.ClientName = id
		c := registerHeldForReview(t, svc, db, id, token, m)
		echo := ClientMetadataOf(c)
		got, err := svc.Registration.UpdateRegisteredClient(ctx, id, token, "192.0.2.1", "", echo)
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		if got.PendingApproval || len(clientChanges(c, got)) > 0 {
			t.Errorf("%s: its registration read back and sent: held %v, changes %+v", id, got.PendingApproval, clientChanges(c, got))
		}
	}
}

// An app that registered before application_type was kept has none
// (storage.Client.ApplicationType ""); ClientMetadataOf shows it as web,
// "what it was all along". For a native app of then (a
// public app with a custom-scheme redirect URI, which ValidateRedirectURI
// allowed), that is wrong: its registration read back (GET) and sent
// with only a new name (PUT) is refused, its own redirect URI not being a
// web app's; and the update it must send instead (application_type
// native) is not exempt like web, so a rename holds it again.
func TestReviewNativeAppOfBeforeApplicationType(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	const token = RegistrationAccessTokenPrefix + "old-native"
	m := ClientMetadata{
		RedirectURIs: []string{"com.example.app:/cb"}, GrantTypes: []string{GrantAuthorizationCode},
		TokenEndpointAuthMethod: AuthNone, ClientName: "Old native", ApplicationType: AppTypeNative,
	}
	registerHeldForReview(t, svc, db, "old-native", token, m)
	// The record as the release before application_type left it.
	c, err := db.UpdateClient(ctx, "old-native", func(c storage.Client) (storage.Client, error) {
		c.ApplicationType = ""
		return c, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	echo := ClientMetadataOf(c)
	got, err := svc.Registration.UpdateRegisteredClient(ctx, "old-native", token, "192.0.2.1", "", echo)
	if err != nil {
		t.Errorf("its registration read back (application_type %q) and sent: %v", ClientMetadataOf(c).ApplicationType, err)
	}
	if err == nil && got.PendingApproval {
		t.Errorf("held again by its own registration read back and sent: %+v", clientChanges(c, got))
	}
	echo.ApplicationType = AppTypeNative
	if got, err := svc.Registration.UpdateRegisteredClient(ctx, "old-native", token, "192.0.2.1", "", echo); err != nil || got.PendingApproval {
		t.Errorf("naming the type it was all along (native): held %v, %v", got.PendingApproval, err)
	}
}
