package account_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

// A sign-in is recorded whole or not at all. Here the account is deleted
// between the password step and the end of the sign-in (an admin acts
// while the person types a second factor): the sign-in fails and leaves
// neither a session nor a successful entry in the history of a user that
// no longer exists. The writes used to run apart, and the session and the
// entry were written although the user's could not be.
func TestSignInOfDeletedAccountWritesNothing(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := context.Background()
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: "long enough pw"})
	if err != nil {
		t.Fatal(err)
	}
	c := account.Credentials{Login: "alice", Password: "long enough pw", IP: "192.0.2.1", UserAgent: "test"}
	passed, newHash, err := svc.SignIn.PasswordStep(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteUser(ctx, u.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, secret, _, err := svc.SignIn.FinishSignIn(ctx, passed, newHash, c, []string{"pwd", "otp", "mfa"})
	if err == nil {
		t.Fatal("a sign-in of a deleted account was recorded")
	}
	if secret != "" {
		t.Error("a session secret was handed out")
	}
	sessions, err := db.ListUserSessions(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 0 {
		t.Errorf("sessions of the deleted account: %+v", sessions)
	}
	attempts, err := db.ListLoginAttempts(ctx, u.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attempts {
		if a.Success {
			t.Errorf("successful sign-in in the history of the deleted account: %+v", a)
		}
	}
}
