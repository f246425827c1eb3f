package account_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
)

// mailsTo is every mail in the outbox to the address to, newest first.
func mailsTo(t testing.TB, f *adminFixture, to string) []mail.Message {
	t.Helper()
	sealer, err := seal.New(account.TestSealKey)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := f.db.ListOutbox(f.ctx, storage.OutboxQuery{Limit: storage.MaxOutboxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []mail.Message
	for _, m := range msgs {
		if m.Kind != account.OutboxMail {
			continue
		}
		msg, err := account.OpenMail(sealer, m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if strings.EqualFold(msg.To, to) {
			out = append(out, msg)
		}
	}
	return out
}

// The recovery address is where password-reset links go: whoever sets it
// can take the account over with "forgot password". So a new one is taken
// only once a link mailed to it is opened, and the account's addresses are
// told, as for the email itself.
func TestRecoveryEmailChangeWaitsForItsLink(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)

	u, pending, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": "backup@example.net", "given_name": "Alice"}, "en")
	if err != nil || pending == "" {
		t.Fatalf("ask for a recovery address: pending %q, %v", pending, err)
	}
	if got := f.stored(alice.ID); got.RecoveryEmail != "" || got.GivenName != "Alice" || u.RecoveryEmail != "" {
		t.Fatalf("before the link: recovery %q (returned %q), given name %q; want no recovery address yet and the name saved", got.RecoveryEmail, u.RecoveryEmail, got.GivenName)
	}
	if told := mailsTo(t, f, "alice@example.com"); len(told) != 1 || !strings.Contains(told[0].Text, "recovery email address, where password\nreset links go, to backup@example.net") {
		t.Errorf("the email was told %d times, want once with the new recovery address: %+v", len(told), told)
	}
	if sent := mailsTo(t, f, "backup@example.net"); len(sent) != 1 || !strings.Contains(sent[0].Subject, "recovery email address") || !strings.Contains(sent[0].HTML, "as its recovery email address") {
		t.Errorf("the link mail: %+v", sent)
	}
	link := mailedLink(t, f, "backup@example.net")
	l, err := f.svc.Mail.CheckEmailLink(f.ctx, link, "192.0.2.1")
	if err != nil || !l.Recovery || l.Address != "backup@example.net" {
		t.Fatalf("the link's page: %+v, %v", l, err)
	}
	if _, l, err = f.svc.Mail.ConfirmEmail(f.ctx, link, "192.0.2.1", "test"); err != nil || !l.Recovery {
		t.Fatalf("confirm: %+v, %v", l, err)
	}
	got := f.stored(alice.ID)
	if got.RecoveryEmail != "backup@example.net" || got.Email != "alice@example.com" {
		t.Fatalf("after the link: recovery %q, email %q", got.RecoveryEmail, got.Email)
	}
	if e := f.lastEvent(alice.ID, account.EventRecoveryEmailConfirmed); len(e.Changes) != 1 || e.Changes[0].After != "backup@example.net" {
		t.Errorf("event %+v", e)
	}
	if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, link, "192.0.2.1", "test"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("the link a second time: %v", err)
	}

	// A second change tells the email and the recovery address it replaces.
	if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": "other@example.net"}, "en"); err != nil {
		t.Fatal(err)
	}
	if n := len(mailsTo(t, f, "backup@example.net")); n != 2 { // its own link, then the notice
		t.Errorf("the old recovery address got %d mails, want its link and a notice", n)
	}
	if n := len(mailsTo(t, f, "alice@example.com")); n != 2 {
		t.Errorf("the email was told %d times, want twice", n)
	}
	// Removing it takes effect at once (resets go to the email, which the
	// account owns already) and tells the old address.
	if _, pending, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": ""}, "en"); err != nil || pending != "" {
		t.Fatalf("remove the recovery address: pending %q, %v", pending, err)
	}
	if got := f.stored(alice.ID); got.RecoveryEmail != "" {
		t.Fatalf("after the removal: recovery %q", got.RecoveryEmail)
	}
	if got := mailsTo(t, f, "backup@example.net"); len(got) != 3 || !slices.ContainsFunc(got, func(m mail.Message) bool { return strings.Contains(m.Subject, "recovery email address was removed") }) {
		t.Errorf("the removed address got %d mails, want a removal notice as the third: %+v", len(got), got)
	}
	// The link to other@ was for changing from backup@: the address is no
	// longer that, so it changes nothing.
	if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, mailedLink(t, f, "other@example.net"), "192.0.2.1", "test"); account.ErrorCode(err) != account.Conflict {
		t.Errorf("a change link from a removed address: %v, want a conflict", err)
	}
	if got := f.stored(alice.ID); got.RecoveryEmail != "" {
		t.Errorf("a stale link set the recovery address to %q", got.RecoveryEmail)
	}

	// Bad input is refused and changes nothing.
	if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": "not an address", "given_name": "Mallory"}, "en"); account.ErrorField(err) != "recovery_email" {
		t.Errorf("a bad address: %v", err)
	}
	if got := f.stored(alice.ID); got.GivenName != "Alice" {
		t.Errorf("a refused change saved the given name %q", got.GivenName)
	}
}

// A change whose link cannot be sent (the account's mails this hour are
// spent) saves nothing, not even the other fields of the same form.
func TestRateLimitedAddressChangeSavesNothing(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	var err error
	for i := 0; err == nil && i < 20; i++ {
		_, _, err = f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": "new" + string(rune('a'+i)) + "@example.org"}, "en")
	}
	if account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("20 change requests in an hour: %v, want rate limited", err)
	}
	_, _, err = f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": "r@example.org", "given_name": "Changed"}, "en")
	if account.ErrorCode(err) != account.RateLimited || account.ErrorField(err) != "recovery_email" {
		t.Fatalf("a change beyond the limit: %v (field %q)", err, account.ErrorField(err))
	}
	if got := f.stored(alice.ID); got.GivenName == "Changed" || got.RecoveryEmail != "" {
		t.Errorf("a refused change saved given name %q, recovery %q", got.GivenName, got.RecoveryEmail)
	}
}

// An administrator's links: a new one voids the earlier (it was lost or
// leaked), and an account blocked or deleted by someone else while a link
// is pending names the link's maker as the event's initiator, whose
// webhooks then hear that their workflow was cut short.
func TestAdminLinksOnePerUserAndInterruptedWorkflows(t *testing.T) {
	f := newAdminFixture(t)
	bob := f.user("bob", true)
	bobActor := account.Actor{Kind: account.ActorUser, UserID: bob.ID}
	alice := f.user("alice", false)
	first, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, first.Secret, "192.0.2.1"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("the earlier reset link: %v, want not found", err)
	}
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, second.Secret, "192.0.2.1"); err != nil {
		t.Errorf("the newer reset link: %v", err)
	}

	// root made alice's link; bob blocks her: the event names root.
	if _, err := f.svc.Admin.BlockUser(f.ctx, bobActor, alice.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(alice.ID, "user.blocked"); e.Initiator != f.root.ID {
		t.Errorf("block by another admin: initiator %q, want the link's maker %q", e.Initiator, f.root.ID)
	}
	// root blocking the account of its own workflow names nobody else.
	ivan, _, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "ivan", Email: "ivan@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, ivan.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(ivan.ID, "user.blocked"); e.Initiator != "" {
		t.Errorf("block by the link's maker: initiator %q, want none", e.Initiator)
	}
	// Deleted by bob, ivan's invitation by root is reported to root.
	if err := f.svc.Admin.DeleteUser(f.ctx, bobActor, ivan.ID); err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(ivan.ID, "user.deleted"); e.Initiator != f.root.ID {
		t.Errorf("delete by another admin: initiator %q, want %q", e.Initiator, f.root.ID)
	}
}

// A user's own webhook turned off after failures: only its owner can turn
// it on again, so the owner is told, whatever the notification switches
// say; an administrator's hook (no owner) mails nobody.
func TestWebhookTurnedOffTellsItsOwner(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	e := storage.AuditEvent{Type: account.EventWebhookDisabled, ActorKind: account.ActorSystem, TargetUserID: alice.ID, TargetID: "hook-1",
		Reason: "5 delivery attempts in a row failed; the last: connection refused"}
	msgs := f.svc.ReactionsForTest(f.ctx, e)
	if len(msgs) != 1 {
		t.Fatalf("%d messages for the owner's hook turned off, want one mail", len(msgs))
	}
	sealer, err := seal.New(account.TestSealKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := account.OpenMail(sealer, msgs[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != "alice@example.com" || !strings.Contains(m.Subject, "webhook was turned off") || !strings.Contains(m.Text, "connection refused") || !strings.Contains(m.Text, "/security") {
		t.Errorf("the mail: %+v", m)
	}
	// Its link leads to the hook's page, where it can be turned on: the
	// security page has no webhooks on it.
	if want := "https://id.example/security/webhooks/hook-1"; !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, want) {
		t.Errorf("the mail does not link the hook's page %s:\n%s", want, m.Text)
	}
	e.TargetUserID = ""
	if msgs := f.svc.ReactionsForTest(f.ctx, e); len(msgs) != 0 {
		t.Errorf("an administrator's hook turned off: %d messages", len(msgs))
	}
}

// An address the account verified once is taken at once, without a link.
// Whoever holds only the session can have verified one (an email change
// they confirmed, then undid): setting it as the recovery address, or as
// the email, must still tell the addresses it replaces, or password
// resets go there silently.
func TestAddressChangedAtOnceTellsTheAddressItReplaces(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	confirm := func(to string) {
		t.Helper()
		if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, mailedLink(t, f, to), "192.0.2.1", "test"); err != nil {
			t.Fatalf("confirm %s: %v", to, err)
		}
	}
	change := func(field, addr string) {
		t.Helper()
		if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{field: addr}, "en"); err != nil {
			t.Fatalf("set %s to %s: %v", field, addr, err)
		}
	}
	// The owner's recovery address, then an email change to the
	// attacker's address, confirmed and undone.
	change("recovery_email", "backup@example.net")
	confirm("backup@example.net")
	change("email", "evil@example.org")
	confirm("evil@example.org")
	change("email", "alice@example.com")
	confirm("alice@example.com")
	if got := f.stored(alice.ID); got.Email != "alice@example.com" || got.RecoveryEmail != "backup@example.net" {
		t.Fatalf("before: email %q, recovery %q", got.Email, got.RecoveryEmail)
	}
	backup, email := len(mailsTo(t, f, "backup@example.net")), len(mailsTo(t, f, "alice@example.com"))

	change("recovery_email", "evil@example.org")
	if got := f.stored(alice.ID); got.RecoveryEmail != "evil@example.org" {
		t.Fatalf("a verified address as the recovery address: %q, want it at once", got.RecoveryEmail)
	}
	told := mailsTo(t, f, "backup@example.net")
	changed := func(m mail.Message) bool {
		return strings.Contains(m.Subject, "was changed") && strings.Contains(m.Text, "evil@example.org") && !strings.Contains(m.Text, "only once the new")
	}
	if len(told) != backup+1 || !slices.ContainsFunc(told, changed) {
		t.Errorf("the replaced recovery address got %d new mails, want one naming the new address: %+v", len(told)-backup, told)
	}
	if n := len(mailsTo(t, f, "alice@example.com")); n != email+1 {
		t.Errorf("the email got %d new mails of the recovery change, want one", n-email)
	}

	email = len(mailsTo(t, f, "alice@example.com"))
	change("email", "evil@example.org")
	if got := f.stored(alice.ID); got.Email != "evil@example.org" {
		t.Fatalf("a verified address as the email: %q, want it at once", got.Email)
	}
	told = mailsTo(t, f, "alice@example.com")
	if len(told) != email+1 || !slices.ContainsFunc(told, changed) {
		t.Errorf("the replaced email got %d new mails, want one saying it changed to the new address: %+v", len(told)-email, told)
	}
}

// The notice of an address change tells the owner who did not ask for it
// to change their password: that must void the change still waiting for
// its link, which otherwise works from the new address's mailbox for a
// day, with no session, after every session of the intruder ended.
func TestPasswordChangeVoidsPendingAddressChanges(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": "evil@example.org", "recovery_email": "evil2@example.org"}, "en"); err != nil {
		t.Fatal(err)
	}
	emailLink, recoveryLink := mailedLink(t, f, "evil@example.org"), mailedLink(t, f, "evil2@example.org")
	f.clock.Add(time.Minute)
	if err := f.svc.Credentials.ChangePassword(f.ctx, f.stored(alice.ID), "", adminTestPassword, "a brand new passphrase 42", "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{emailLink, recoveryLink} {
		if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, link, "192.0.2.7", "test"); err == nil {
			t.Errorf("a change asked for before the password changed was confirmed after it")
		}
	}
	if got := f.stored(alice.ID); got.Email != "alice@example.com" || got.RecoveryEmail != "" {
		t.Errorf("after the password change: email %q, recovery %q", got.Email, got.RecoveryEmail)
	}
	// A change asked for after the new password works.
	f.clock.Add(time.Minute)
	if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"recovery_email": "backup@example.net"}, "en"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, mailedLink(t, f, "backup@example.net"), "192.0.2.1", "test"); err != nil {
		t.Errorf("a change after the password change: %v", err)
	}
}

// An administrator blocks an account they think taken over: a change of
// its email or recovery address still waiting for its link must not go
// through while it is blocked (the link needs no session), or the
// intruder's address is the account's once it is unblocked.
func TestEmailLinksOfABlockedAccountDoNotWork(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": "evil@example.org", "recovery_email": "evil2@example.org"}, "en"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, alice.ID); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"evil@example.org", "evil2@example.org"} {
		link := mailedLink(t, f, to)
		if _, err := f.svc.Mail.CheckEmailLink(f.ctx, link, "192.0.2.7"); err == nil {
			t.Errorf("the page of the link to %s works for a blocked account", to)
		}
		if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, link, "192.0.2.7", "test"); err == nil {
			t.Errorf("the link to %s was confirmed for a blocked account", to)
		}
	}
	if got := f.stored(alice.ID); got.Email != "alice@example.com" || got.RecoveryEmail != "" {
		t.Errorf("the blocked account: email %q, recovery %q", got.Email, got.RecoveryEmail)
	}
}

// The notices of changes taken at once count against the account's mails
// per hour like links do: switching the email back and forth between two
// addresses it verified must not become a flood of mail to the owner.
func TestAddressChangesAtOnceAreThrottled(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	for _, to := range []string{"evil@example.org", "alice@example.com"} {
		if _, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": to}, "en"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, mailedLink(t, f, to), "192.0.2.1", "test"); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(time.Hour) // a new hour's mails
	before := len(mailsTo(t, f, "alice@example.com"))
	refused := 0
	for i := range 20 {
		to := []string{"evil@example.org", "alice@example.com"}[i%2]
		_, _, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": to, "given_name": fmt.Sprint("Alice ", i)}, "en")
		switch {
		case account.ErrorCode(err) == account.RateLimited:
			refused++
			if got := f.stored(alice.ID); strings.EqualFold(got.Email, to) || got.GivenName == fmt.Sprint("Alice ", i) {
				t.Errorf("switch %d was refused yet saved: email %q, given name %q", i, got.Email, got.GivenName)
			}
		case err != nil:
			t.Fatalf("switch %d: %v", i, err)
		}
	}
	if n := len(mailsTo(t, f, "alice@example.com")) - before; n > 5 || refused == 0 {
		t.Errorf("20 switches in an hour: %d notices to the owner, %d refused; want at most 5 and the rest refused", n, refused)
	}
}
