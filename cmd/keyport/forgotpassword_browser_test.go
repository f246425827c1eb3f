package main

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/smtptest"
)

// TestForgotPasswordInChromium is the forgotten password as a person goes
// through it: from the sign-in page's link, the form and its notice, the
// mail a real SMTP server received, the mailed link opened in the same
// browser, a new password, and a sign-in with it. The old password then
// fails.
func TestForgotPasswordInChromium(t *testing.T) {
	c := newChrome(t)
	smtp := smtptest.Start(t)
	srv, base := startLocalhostServer(t, withTestMail(smtp))
	addr := smtptest.NewAddress("greta")
	if _, err := srv.Main.Accounts.Users.CreateUser(context.Background(), account.NewUser{Username: "greta", Email: addr, Password: testPassword}); err != nil {
		t.Fatal(err)
	}

	c.do("open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("forgot-password-link")))
	c.do("follow Forgot your password?", chromedp.Click(chromedp.ID("forgot-password-link")), chromedp.WaitVisible(chromedp.CSS(`#forgot-password input#login`)))
	c.do("ask for a link",
		chromedp.SendKeys(chromedp.CSS(`#forgot-password input#login`), "greta"),
		chromedp.Click(chromedp.CSS(`#forgot-password button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := c.text("#notice"); !strings.Contains(n, "we sent it an email with a link") {
		t.Errorf("the notice after asking: %q", n)
	}

	got := smtp.WaitFor(t, addr)
	link := resetLinkPattern.FindString(got.Text)
	if !strings.HasPrefix(link, base+account.PasswordResetPath+"?token=") {
		t.Fatalf("the mail holds no reset link to %s: %q\n%s", base, link, got.Text)
	}

	const newPassword = "lantern orbit meadow 7731"
	c.do("open the mailed link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("password_confirm")))
	if lead := c.text("main .lead"); !strings.Contains(lead, "greta") {
		t.Errorf("the link's page does not name the account: %q", lead)
	}
	c.do("set a new password",
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.SendKeys(chromedp.ID("password_confirm"), newPassword),
		chromedp.Click(chromedp.CSS(`form[action="`+account.PasswordResetPath+`"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`main a.button[href="/login"]`)))
	if h := c.text("main h1"); h != "Your password is changed" {
		t.Errorf("after setting the password: %q", h)
	}

	c.do("go to sign-in", chromedp.Click(chromedp.CSS(`main a.button[href="/login"]`)), chromedp.WaitVisible(chromedp.ID("login")))
	c.do("sign in with the new password",
		chromedp.SendKeys(chromedp.ID("login"), "greta"),
		chromedp.SendKeys(chromedp.ID("password"), newPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	if cliAuth(srv.Main, "greta", testPassword) == nil {
		t.Error("the old password still works")
	}
}
