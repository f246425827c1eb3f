package account_test

import (
	"io/fs"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/mail"
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
	svc.EnableMail(tm, nil)
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
