package account_test

import (
	"time"

	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// An admin's reset link reports its end: used (the password changed after
// it was made) ends nothing more; unused, it is reported as expired, with
// the admin as the event's initiator. A user deleted meanwhile ends
// nothing.
func TestLinkExpired(t *testing.T) {
	f := newAdminFixture(t)
	expiry := func() storage.OutboxMessage {
		t.Helper()
		msgs, _, err := f.db.ListOutbox(f.ctx, storage.OutboxQuery{Kind: account.OutboxLinkExpiry, Limit: 10})
		if err != nil || len(msgs) == 0 {
			t.Fatalf("the link's expiry message: %v %d", err, len(msgs))
		}
		return msgs[0] // the newest
	}
	expired := func(id string) int {
		evs, _, err := f.db.ListAudit(f.ctx, storage.AuditQuery{TargetUserID: id, Types: []string{account.EventPasswordResetLinkExpired}})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}

	bob := f.user("bob", false)
	if _, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	unused := expiry()
	if err := f.svc.Admin.LinkExpired(f.ctx, unused.Payload); err != nil {
		t.Fatal(err)
	}
	if n := expired(bob.ID); n != 1 {
		t.Fatalf("an unused link: %d expiry events", n)
	}
	if e := f.lastEvent(bob.ID, account.EventPasswordResetLinkExpired); e.Initiator != f.root.ID {
		t.Errorf("initiator %q, want the admin", e.Initiator)
	}

	carol := f.user("carol", false)
	link, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, carol.ID)
	if err != nil {
		t.Fatal(err)
	}
	used := expiry()
	f.clock.Add(1) // the password changes after the link was made
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, link.Secret, "a fresh passphrase for carol 7", "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Admin.LinkExpired(f.ctx, used.Payload); err != nil {
		t.Fatal(err)
	}
	if n := expired(carol.ID); n != 0 {
		t.Errorf("a used link was reported expired (%d)", n)
	}
	if err := f.svc.Admin.DeleteUser(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Admin.LinkExpired(f.ctx, unused.Payload); err != nil {
		t.Errorf("the link of a deleted user: %v", err)
	}
	if err := f.svc.Admin.LinkExpired(f.ctx, []byte("{")); err == nil {
		t.Error("a malformed payload was taken")
	}
}

// A link made again voids the earlier one (one live link per user): when
// the earlier one's expiry comes due, the workflow goes on with the newer
// link, so nothing is reported; the newer link's own expiry reports it.
func TestLinkExpiredAfterANewerLink(t *testing.T) {
	f := newAdminFixture(t)
	newest := func() storage.OutboxMessage {
		t.Helper()
		msgs, _, err := f.db.ListOutbox(f.ctx, storage.OutboxQuery{Kind: account.OutboxLinkExpiry, Limit: 10})
		if err != nil || len(msgs) == 0 {
			t.Fatalf("the link's expiry message: %v %d", err, len(msgs))
		}
		return msgs[0]
	}
	expired := func(id string) int {
		evs, _, err := f.db.ListAudit(f.ctx, storage.AuditQuery{TargetUserID: id, Types: []string{account.EventPasswordResetLinkExpired}})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	bob := f.user("bob", false)
	if _, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	first := newest()
	f.clock.Add(10 * time.Minute)
	if _, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	second := newest()
	if first.ID == second.ID {
		t.Fatal("one expiry message for two links")
	}
	// The first link's time is over, the second's is not.
	f.clock.Add(account.PasswordResetTTL - 5*time.Minute)
	if err := f.svc.Admin.LinkExpired(f.ctx, first.Payload); err != nil {
		t.Fatal(err)
	}
	if n := expired(bob.ID); n != 0 {
		t.Errorf("the voided link was reported expired (%d events) while the newer one still works", n)
	}
	f.clock.Add(10 * time.Minute)
	if err := f.svc.Admin.LinkExpired(f.ctx, second.Payload); err != nil {
		t.Fatal(err)
	}
	if n := expired(bob.ID); n != 1 {
		t.Errorf("the newer link's end: %d expiry events, want one", n)
	}
}

// A reset link made before the password last changed is void: the owner
// changed it (after a notice, say) or reset it through a newer link, and
// a link that leaked or was mailed twice must not set it again.
func TestResetLinkVoidOnceThePasswordChanged(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	const changed = "a brand new passphrase 42"
	check := func(name, link string) {
		t.Helper()
		if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, link, "192.0.2.1"); account.ErrorCode(err) != account.NotFound {
			t.Errorf("%s: its page after the password changed: %v, want not found", name, err)
		}
		if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, link, "the intruder's passphrase 7", "192.0.2.7", "test"); account.ErrorCode(err) != account.NotFound {
			t.Errorf("%s: used after the password changed: %v, want not found", name, err)
		}
	}
	bob := f.user("bob", false)
	adminLink, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Mail.RequestPasswordReset(f.ctx, "bob", "192.0.2.1", "en"); err != nil {
		t.Fatal(err)
	}
	f.svc.Mail.Wait()
	mailed := mailedLink(t, f, "bob@example.com")
	f.clock.Add(time.Minute)
	if err := f.svc.Credentials.ChangePassword(f.ctx, f.stored(bob.ID), "", adminTestPassword, changed, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	before := f.stored(bob.ID).PasswordHash
	check("the administrator's link", adminLink.Secret)
	check("the mailed link", mailed)
	if f.stored(bob.ID).PasswordHash != before {
		t.Error("a link from before the change set the password")
	}
	// A link made after the change works.
	f.clock.Add(time.Minute)
	fresh, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, fresh.Secret, "another new passphrase 9", "192.0.2.1", "test"); err != nil {
		t.Errorf("a link made after the change: %v", err)
	}
}

// Blocking an account whose invitation or reset link is pending cuts the
// workflow short (its maker hears so, through the event's Initiator): the
// link must stop working then, not set a password on the blocked account
// for whoever holds it to use once it is unblocked.
func TestLinksOfABlockedAccountDoNotWork(t *testing.T) {
	f := newAdminFixture(t)
	ivan, invite, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "ivan", Email: "ivan@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	bob := f.user("bob", false)
	reset, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ivan.ID, bob.ID} {
		if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, id); err != nil {
			t.Fatal(err)
		}
	}
	bobHash := f.stored(bob.ID).PasswordHash
	if _, err := f.svc.Admin.CheckInvitation(f.ctx, invite.Secret, "192.0.2.1"); err == nil {
		t.Error("the invitation's page of a blocked account works")
	}
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, invite.Secret, "a passphrase for ivan 42", "192.0.2.1", "test"); err == nil {
		t.Error("a blocked account's invitation was accepted")
	}
	if _, err := f.svc.Admin.CheckPasswordResetLink(f.ctx, reset.Secret, "192.0.2.1"); err == nil {
		t.Error("the reset link's page of a blocked account works")
	}
	if _, err := f.svc.Admin.ResetPasswordWithLink(f.ctx, reset.Secret, "a passphrase for bob 42", "192.0.2.1", "test"); err == nil {
		t.Error("a blocked account's password was reset through a link")
	}
	if got := f.stored(ivan.ID); got.PasswordHash != "" {
		t.Error("the blocked invitee has a password")
	}
	if got := f.stored(bob.ID); got.PasswordHash != bobHash {
		t.Error("the blocked account's password changed")
	}
	for _, e := range f.events(ivan.ID) {
		if e.Type == "user.invitation_accepted" {
			t.Error("an invitation_accepted event after the workflow was cut short")
		}
	}
}
