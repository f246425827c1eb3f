package account_test

import (
	"context"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// TestFlowACR: the classes a request asks for (acr_values, the claims
// parameter's acr) decide whether a session answers it, and an essential
// one that cannot be met ends the request rather than giving the app a
// weaker one. prompt=select_account is a new sign-in.
func TestFlowACR(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	v := f.signedInVisitor(t) // one factor: amr ["pwd"]
	if _, err := f.flow.Consented(ctx, f.request(t), f.user.ID); err != nil {
		t.Fatal(err)
	}
	withACR := func(essential bool, values ...string) storage.AuthRequest {
		a := f.request(t)
		a.ACRValues, a.ACREssential = values, essential
		return a
	}

	// Without a second factor the user cannot meet 2fa: a voluntary
	// request takes the session as it is, an essential one fails.
	if s := f.next(t, withACR(false, account.ACRSecondFactor), v); s.Kind != account.StepDone {
		t.Errorf("voluntary 2fa, no second factor: %+v", s)
	}
	if s := f.next(t, withACR(true, account.ACRSecondFactor, account.ACRPasskey), v); s.Kind != account.StepFail || s.Code != "unmet_authentication_requirements" {
		t.Errorf("essential 2fa, no second factor: %+v", s)
	}
	if s := f.next(t, withACR(true, account.ACRPassword, account.ACRSecondFactor), v); s.Kind != account.StepDone {
		t.Errorf("essential 1fa or 2fa, no second factor: %+v", s)
	}

	// With a second factor, the one-factor session must step up: a new
	// sign-in (login_required for prompt=none).
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	v.User = &f.user
	if s := f.next(t, withACR(false, account.ACRSecondFactor), v); s.Kind != account.StepSignIn || s.Code != "login_required" || s.User.ID != f.user.ID {
		t.Errorf("voluntary 2fa, a one-factor session: %+v", s)
	}
	a := withACR(false, account.ACRSecondFactor)
	a.Prompt = []string{"none"}
	if s := f.next(t, a, v); s.Kind != account.StepFail || s.Code != "login_required" {
		t.Errorf("2fa with prompt=none, a one-factor session: %+v", s)
	}
	if s := f.next(t, withACR(false, account.ACRPassword), v); s.Kind != account.StepDone {
		t.Errorf("1fa, a one-factor session: %+v", s)
	}

	// The password step of a request for 2fa owes the second factor.
	p, err := f.flow.FirstStepPassed(ctx, account.FirstStep{Request: withACR(false, account.ACRSecondFactor), User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if err != nil || p.Request.PendingUserID != f.user.ID || p.SessionSecret != "" {
		t.Errorf("password step for 2fa: %+v %v", p.Request, err)
	}

	// A sign-in on the record below an essential class fails; below a
	// voluntary one it stands, with the class it met.
	a, err = f.db.UpdateAuthRequest(ctx, f.request(t).ID, func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r.ACRValues, r.ACREssential = []string{account.ACRSecondFactor}, true
		r.UserID, r.SessionID, r.AMR, r.AuthTime = f.user.ID, v.Session.ID, []string{"pwd"}, f.clock.Now()
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.next(t, a, f.visitor()); s.Kind != account.StepFail || s.Code != "unmet_authentication_requirements" {
		t.Errorf("a one-factor sign-in on an essential 2fa request: %+v", s)
	}

	// select_account: one session per browser, so choosing is signing in.
	if s := f.next(t, f.request(t, "select_account"), v); s.Kind != account.StepSignIn {
		t.Errorf("prompt=select_account with a session: %+v", s)
	}
}

// TestFlowEssentialACRAnyClassAsked: an essential acr with several values
// is met by any one of them (OIDC Core §5.5.1.1), not only by the
// strongest the user could reach: a sign-in with two factors answers a
// request for "2fa or passkey" from a user who also has a passkey.
func TestFlowEssentialACRAnyClassAsked(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	opts, id, err := f.svc.Credentials.BeginPasskeyRegistration(ctx, f.user, "key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Credentials.FinishPasskeyRegistration(ctx, f.user, id, newSoftKey(t, "https://id.example.com").Register(opts)); err != nil {
		t.Fatal(err)
	}
	v := f.signedInVisitor(t)
	if _, err := f.flow.Consented(ctx, f.request(t), f.user.ID); err != nil {
		t.Fatal(err)
	}
	a, err := f.db.UpdateAuthRequest(ctx, f.request(t).ID, func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r.ACRValues, r.ACREssential = []string{account.ACRSecondFactor, account.ACRPasskey}, true
		r.UserID, r.SessionID, r.AMR, r.AuthTime = f.user.ID, v.Session.ID, []string{"pwd", "otp", "mfa"}, f.clock.Now()
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.next(t, a, f.visitor()); s.Kind != account.StepDone {
		t.Fatalf("a two-factor sign-in on an essential request for 2fa or passkey: step %v, %s", s.Kind, s.Code)
	}
	if got := account.ACRFor(a.AMR, a.ACRValues); got != account.ACRSecondFactor {
		t.Errorf("its acr: %q", got)
	}
	// One factor meets neither: the request fails.
	a, err = f.db.UpdateAuthRequest(ctx, a.ID, func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r.AMR = []string{"pwd"}
		return r, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.next(t, a, f.visitor()); s.Kind != account.StepFail || s.Code != "unmet_authentication_requirements" {
		t.Errorf("a one-factor sign-in on an essential request for 2fa or passkey: step %v, %s", s.Kind, s.Code)
	}
}
