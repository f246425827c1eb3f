package account_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
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
		// Only the first 64 characters are read: a strong start is enough,
		// and a long weak start is refused quickly instead of taking seconds.
		{"long, strong start", "zebra kettle lantern 1987 " + strings.Repeat("a", 900), "alice", "alice@example.com", nil, ""},
		{"long, weak start", strings.Repeat("ab1!", 250), "alice", "alice@example.com", nil, weakMessage},
	}
	for _, c := range cases {
		err := svc.CheckPassword(c.password, c.username, c.email, c.names...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.want != "" && (account.ErrorCode(err) != account.Invalid || !strings.HasPrefix(account.ErrorMessage(err), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}

	// Score 0 turns the check off; the length rule stays.
	off, _, _ := newLoggedService(t, account.Policy{})
	if err := off.CheckPassword("password1234", "root", "root@example.com"); err != nil {
		t.Errorf("min_score 0: %v", err)
	}
}

// Every way of setting a password applies the check: creation, an admin's
// set-password and the person's own change (which feeds the stored names).
func TestPasswordStrengthEverywhere(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newLoggedService(t, account.Policy{MinPasswordScore: 3})
	if _, err := svc.CreateUser(ctx, account.NewUser{Username: "root", Email: "root@example.com", Admin: true, Password: "password1234"}); account.ErrorCode(err) != account.Invalid {
		t.Errorf("create with a weak password: %v", err)
	}
	u, err := svc.CreateUser(ctx, account.NewUser{Username: "wanda", Email: "wanda@example.com", Name: "Wanda Quillfeather", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetPassword(ctx, "wanda", "Quillfeather2024"); !strings.HasPrefix(account.ErrorMessage(err), personalMessage) {
		t.Errorf("set-password with the family name: %v", err)
	}
	err = svc.ChangePassword(ctx, u, "", "correct horse battery", "Quillfeather2024", "192.0.2.1", "test")
	if !strings.HasPrefix(account.ErrorMessage(err), personalMessage) || account.ErrorField(err) != "new_password" {
		t.Errorf("own change to a password with the family name: %v", err)
	}
	if got := getUser(t, db, u.ID); got.PasswordHash != u.PasswordHash {
		t.Error("a refused password was stored")
	}
	if err := svc.ChangePassword(ctx, u, "", "correct horse battery", "zebra kettle lantern", "192.0.2.1", "test"); err != nil {
		t.Errorf("a strong new password: %v", err)
	}
}

// BenchmarkPasswordStrength is the cost of one check: a typical password,
// and the slowest shape found (a repeated pattern at the 64-character cut).
func BenchmarkPasswordStrength(b *testing.B) {
	svc := newBenchService(b)
	for _, c := range []struct{ name, password string }{
		{"typical", "correct horse battery"},
		{"weak", "password1234"},
		{"worst-64", strings.Repeat("1990-01-02", 7)},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				_ = svc.CheckPassword(c.password, "alice", "alice@example.com", "Alice Liddell")
			}
		})
	}
}
