package account_test

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/templates"
)

// enableTestMail turns on the mail flows with the real templates.
func enableTestMail(t testing.TB, svc *account.Service) {
	t.Helper()
	sub, err := fs.Sub(templates.FS, "mail")
	if err != nil {
		t.Fatal(err)
	}
	tm, err := mail.ParseTemplates(sub)
	if err != nil {
		t.Fatal(err)
	}
	svc.EnableMail(tm)
}

// An invitation mailed to one address proves that address only: when an
// administrator changes the email before the invitation is accepted, the
// new address (which never got the link) must not become verified.
func TestMailedInvitationVerifiesOnlyTheAddressItWentTo(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	u, link, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "newbie", Email: "first@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	if link.MailedTo != "first@example.com" {
		t.Fatalf("invitation mailed to %q", link.MailedTo)
	}
	if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{Email: ptr("second@example.com")}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Admin.RedeemInvitation(f.ctx, link.Secret, "a long passphrase 1", "192.0.2.1", "test")
	if err != nil {
		t.Fatal(err)
	}
	if got.EmailVerified || f.stored(u.ID).EmailVerified {
		t.Error("the invitation mailed to first@example.com verified second@example.com")
	}

	// The address it went to is verified as before.
	v, link2, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "other", Email: "other@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.RedeemInvitation(f.ctx, link2.Secret, "a long passphrase 1", "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	if !f.stored(v.ID).EmailVerified {
		t.Error("the invitation did not verify the address it was mailed to")
	}
}

// mailedLink is the secret of the newest link mailed to "to" (read from
// the sealed outbox, as the mail deliverer reads it).
func mailedLink(t testing.TB, f *adminFixture, to string) string {
	t.Helper()
	sealer, err := seal.New(account.TestSealKey)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := f.db.ListOutbox(f.ctx, storage.OutboxQuery{Limit: storage.MaxOutboxLimit})
	if err != nil {
		t.Fatal(err)
	}
	secret := ""
	for _, m := range msgs {
		if m.Kind != account.OutboxMail {
			continue
		}
		msg, err := account.OpenMail(sealer, m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if msg.To != to {
			continue
		}
		if _, rest, ok := strings.Cut(msg.Text, "?token="); ok {
			secret, _ = url.QueryUnescape(strings.Fields(rest)[0])
			break // ListOutbox is newest first
		}
	}
	if secret == "" {
		t.Fatalf("no link mailed to %s", to)
	}
	return secret
}

// Two pending changes of one account's email: once the account's address
// changed through one link, the other link (say to a mistyped address,
// whose owner opens it later) must not change it again, which would hand
// the account's address (and its password reset) to that stranger. The
// newer request made the earlier link void at once; and were it not, the
// address it changes from is no longer the account's.
func TestEmailChangeLinkIsStaleOnceTheAddressChanged(t *testing.T) {
	f := newAdminFixture(t)
	enableTestMail(t, f.svc)
	alice := f.user("alice", false)
	if _, pending, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": "alice@gmial.example"}, "en"); err != nil || pending == "" {
		t.Fatalf("change to the typo: pending %q, %v", pending, err)
	}
	typo := mailedLink(t, f, "alice@gmial.example")
	if _, pending, err := f.svc.Mail.UpdateProfile(f.ctx, alice.ID, map[string]string{"email": "alice@gmail.example"}, "en"); err != nil || pending == "" {
		t.Fatalf("change to the right address: pending %q, %v", pending, err)
	}
	right := mailedLink(t, f, "alice@gmail.example")
	if _, err := f.svc.Mail.CheckEmailLink(f.ctx, typo, "198.51.100.7"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("the earlier link, once a newer one was sent: %v, want not found", err)
	}
	if u, _, err := f.svc.Mail.ConfirmEmail(f.ctx, right, "192.0.2.1", "test"); err != nil || u.Email != "alice@gmail.example" {
		t.Fatalf("confirm the right address: %q, %v", u.Email, err)
	}
	if _, _, err := f.svc.Mail.ConfirmEmail(f.ctx, typo, "198.51.100.7", "stranger"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("the void link to the typo: %v, want not found", err)
	}
	if got := f.stored(alice.ID); got.Email != "alice@gmail.example" || !got.EmailVerified {
		t.Errorf("after the stale link: email %q verified %v", got.Email, got.EmailVerified)
	}
}

// A flood of password-reset requests from many networks fills the
// per-address counts; it must not stop the per-account mails of everyone
// else (here a verification mail, refused as "too many emails to this
// account" though the account had none).
func TestAddressFloodDoesNotBlockAccountMail(t *testing.T) {
	svc, _ := account.NewTestService(t, account.TestServiceOptions{
		Policy: account.Policy{Issuer: "https://id.example", SessionLifetime: time.Hour},
		Log:    slog.New(slog.DiscardHandler),
	})
	enableTestMail(t, svc)
	ctx := context.Background()
	alice, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: "a long passphrase 1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100_000 {
		ip := fmt.Sprintf("2001:db8:%x:%x::1", i>>16, i&0xffff)
		if err := svc.Mail.RequestPasswordReset(ctx, "nobody", ip, "en"); err != nil {
			t.Fatalf("request %d from %s: %v", i, ip, err)
		}
	}
	svc.Mail.Wait()
	if err := svc.Mail.SendVerification(ctx, alice, "en"); err != nil {
		t.Errorf("verification mail after a flood from other networks: %v", err)
	}
}
