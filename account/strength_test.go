package account_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testlog"
)

const (
	weakMessage     = "This password is too easy to guess. Use a longer one"
	personalMessage = "This password is too easy to guess because it contains your name, username or email address."
)

func TestPasswordStrength(t *testing.T) {
	svc, _, _ := newLoggedService(t, account.Policy{MinPasswordScore: 3})
	cases := []struct {
		name, password, username, email string
		names                           []string
		want                            string // "" for accepted, else the start of the message
	}{
		{"a common password", "password1234", "root", "root@example.com", nil, weakMessage},
		{"a keyboard walk", "qwertyuiop12", "root", "root@example.com", nil, weakMessage},
		{"a name and a year", "alice2024!", "bob", "bob@example.com", nil, weakMessage},
		{"the username and a year", "zorblax2024!", "zorblax", "zorblax@example.com", nil, personalMessage},
		{"the same for someone else", "zorblax2024!", "bob", "bob@example.com", nil, ""},
		{"the email's local part", "kestrelwood!1987", "kw", "kestrelwood@example.com", nil, personalMessage},
		{"a family name", "Quillfeather2024", "wanda", "wanda@example.com", []string{"Wanda Quillfeather"}, personalMessage},
		{"the same without the name", "Quillfeather2024", "wanda", "wanda@example.com", nil, ""},
		{"unrelated words", "correct horse battery", "alice", "alice@example.com", nil, ""},
		// Only the first 32 characters are read: a strong start is enough,
		// and a long weak start is refused quickly instead of taking seconds.
		{"long, strong start", "zebra kettle lantern 1987 " + strings.Repeat("a", 900), "alice", "alice@example.com", nil, ""},
		{"long, weak start", strings.Repeat("ab1!", 250), "alice", "alice@example.com", nil, weakMessage},
		{"weak for 32 characters", strings.Repeat("password", 4) + " zebra kettle lantern 1987 harbour", "alice", "alice@example.com", nil, weakMessage},
	}
	for _, c := range cases {
		err := svc.Users.CheckPassword(t.Context(), c.password, c.username, c.email, c.names...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (account.ErrorCode(err) != account.Invalid || !strings.HasPrefix(account.ErrorMessage(err), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}

	// Score 0 turns the check off; the length rule stays.
	off, _, _ := newLoggedService(t, account.Policy{})
	if err := off.Users.CheckPassword(t.Context(), "password1234", "root", "root@example.com"); err != nil {
		t.Errorf("min_score 0: %v", err)
	}
}

// Every way of setting a password applies the check: creation, an admin's
// set-password and the person's own change (which feeds the stored names).
func TestPasswordStrengthEverywhere(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newLoggedService(t, account.Policy{MinPasswordScore: 3})
	if _, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "root", Email: "root@example.com", Admin: true, Password: "password1234"}); account.ErrorCode(err) != account.Invalid {
		t.Errorf("create with a weak password: %v", err)
	}
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "wanda", Email: "wanda@example.com", Name: "Wanda Quillfeather", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Users.SetPassword(ctx, "wanda", "Quillfeather2024"); !strings.HasPrefix(account.ErrorMessage(err), personalMessage) {
		t.Errorf("set-password with the family name: %v", err)
	}
	err = svc.Credentials.ChangePassword(ctx, u, "", "correct horse battery", "Quillfeather2024", "192.0.2.1", "test")
	if !strings.HasPrefix(account.ErrorMessage(err), personalMessage) || account.ErrorField(err) != "new_password" {
		t.Errorf("own change to a password with the family name: %v", err)
	}
	if got := getUser(t, db, u.ID); got.PasswordHash != u.PasswordHash {
		t.Error("a refused password was stored")
	}
	if err := svc.Credentials.ChangePassword(ctx, u, "", "correct horse battery", "zebra kettle lantern", "192.0.2.1", "test"); err != nil {
		t.Errorf("a strong new password: %v", err)
	}
}

// The setup page's password is estimated once: CompleteSetup validates
// before it spends the link, and then stores what it validated (the
// estimate is the costly part; it used to run a second time in
// CreateUser).
func TestCompleteSetupEstimatesOnce(t *testing.T) {
	ctx := context.Background()
	logs := &testlog.Buffer{}
	debug, _ := account.NewTestService(t, account.TestServiceOptions{Policy: account.Policy{MinPasswordScore: 3}, NoSealer: true,
		Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	tok, err := debug.Users.CreateSetupToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logs.Take()
	if _, err := debug.Users.CompleteSetup(ctx, tok, account.NewUser{Username: "root", Email: "root@example.com", Password: "zebra kettle lantern 1987"}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.Take(), "password strength estimated"); n != 1 {
		t.Errorf("the setup password was estimated %d times, want once", n)
	}
}

// l33tWorst is the slowest shape found for the estimator: characters that
// each stand for letters in its l33t table, where it tries every
// substitution. Random draws from the same alphabet are about as slow.
var l33tWorst = strings.Repeat("4@8({[<3691!|70$5+%2", 4)[:64]

// BenchmarkPasswordStrength is the cost of one check: a typical password,
// a weak one, and the slowest shapes found, at 64 runes and at the 1024
// bytes a password may have (the estimator reads the first 32 runes).
func BenchmarkPasswordStrength(b *testing.B) {
	svc := newBenchService(b)
	for _, c := range []struct{ name, password string }{
		{"typical", "correct horse battery"},
		{"weak", "password1234"},
		{"dates-64", strings.Repeat("1990-01-02", 7)[:64]},
		{"l33t-64", l33tWorst},
		{"l33t-1024", strings.Repeat(l33tWorst, 16)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_ = svc.Users.CheckPassword(b.Context(), c.password, "alice", "alice@example.com", "Alice Liddell")
			}
		})
	}
}
