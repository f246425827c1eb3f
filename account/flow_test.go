package account_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// flowFixture is the sign-in flow on a real bbolt store, with one app and
// one user.
type flowFixture struct {
	svc   *account.Service
	db    storage.Store
	flow  *account.Flow
	clock *testclock.Clock
	user  storage.User
	app   storage.Client
}

const flowBrowser = "browser-1"

func newFlowFixture(t *testing.T) *flowFixture {
	t.Helper()
	clock := newTestClock()
	svc, db := newSecurityService(t, clock, 30*24*time.Hour)
	app, _, err := svc.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	return &flowFixture{svc: svc, db: db, flow: account.NewFlow(db, svc, storage.PendingLimits{}), clock: clock, user: newSecurityUser(t, svc, "alice"), app: app}
}

// request stores an authorization request of the app, opened by
// flowBrowser, with prompt values.
func (f *flowFixture) request(t *testing.T, prompt ...string) storage.AuthRequest {
	t.Helper()
	now := f.clock.Now()
	a := storage.AuthRequest{ID: account.NewID(), ClientID: f.app.ID, RedirectURI: "https://wiki.example/cb", Scopes: []string{"openid", "profile"},
		ResponseType: "code", Prompt: prompt, CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
	if _, err := f.db.CreateAuthRequest(context.Background(), a, storage.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	a, err := f.flow.Bind(context.Background(), a.ID, flowBrowser)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// owingSecondFactor enrols the user in TOTP and passes the password step
// of a new request, which then owes the second factor.
func (f *flowFixture) owingSecondFactor(t *testing.T) account.Progress {
	t.Helper()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	p, err := f.flow.FirstStepPassed(context.Background(), account.FirstStep{Request: f.request(t), User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// owingSecondFactorAtPortal enrols the user in TOTP and passes the
// password step of a sign-in at the portal itself (for /security): the
// record it gets.
func (f *flowFixture) owingSecondFactorAtPortal(t *testing.T) storage.AuthRequest {
	t.Helper()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	p, err := f.flow.FirstStepPassed(context.Background(), account.FirstStep{ReturnTo: "/security", User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if err != nil {
		t.Fatal(err)
	}
	return p.Request
}

func (f *flowFixture) visitor() account.Visitor {
	return account.Visitor{BrowserID: flowBrowser, IP: "192.0.2.7", UserAgent: "test"}
}

// signedInVisitor is the browser holding a session of the user, started at
// the clock's time.
func (f *flowFixture) signedInVisitor(t *testing.T) account.Visitor {
	t.Helper()
	_, sess, err := f.svc.SignIn.StartSession(context.Background(), f.user, []string{"pwd"}, "192.0.2.7", "test")
	if err != nil {
		t.Fatal(err)
	}
	v := f.visitor()
	v.Session, v.User = &sess, &f.user
	return v
}

func (f *flowFixture) next(t *testing.T, a storage.AuthRequest, v account.Visitor) account.Step {
	t.Helper()
	step, err := f.flow.Next(context.Background(), a, v)
	if err != nil {
		t.Fatal(err)
	}
	return step
}

// TestFlowNextIsARead: the dispatcher decides from the record and the
// session; it changes neither.
func TestFlowNextIsARead(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	a := f.request(t)
	v := f.signedInVisitor(t)
	step := f.next(t, a, v)
	if step.Kind != account.StepConsent || step.User.ID != f.user.ID || step.Client.ID != f.app.ID {
		t.Fatalf("a session without a grant: %+v", step)
	}
	stored, err := f.db.GetAuthRequest(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.UserID != "" || stored.Completed || stored.FailCode != "" {
		t.Errorf("Next wrote the record: %+v", stored)
	}
}

func TestFlowNextSteps(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	anon := f.visitor()

	// Nobody signed in: the sign-in page, or login_required for prompt=none.
	if s := f.next(t, f.request(t), anon); s.Kind != account.StepSignIn || s.Refusal != nil {
		t.Errorf("anonymous: %+v", s)
	}
	if s := f.next(t, f.request(t, "none"), anon); s.Kind != account.StepFail || s.Code != "login_required" {
		t.Errorf("anonymous, prompt=none: %+v", s)
	}

	// A session answers, unless prompt=login or max_age says it is too old.
	v := f.signedInVisitor(t)
	if s := f.next(t, f.request(t, "login"), v); s.Kind != account.StepSignIn {
		t.Errorf("prompt=login with a session: %+v", s)
	}
	maxAge := uint(60)
	a := f.request(t)
	a.MaxAge = &maxAge
	f.clock.Add(2 * time.Minute)
	if s := f.next(t, a, v); s.Kind != account.StepSignIn {
		t.Errorf("max_age passed: %+v", s)
	}

	// Consent: asked once, then the grant answers; prompt=none fails with
	// consent_required before it.
	if s := f.next(t, f.request(t, "none"), v); s.Kind != account.StepFail || s.Code != "consent_required" {
		t.Errorf("no grant, prompt=none: %+v", s)
	}
	a = f.request(t)
	a, err := f.flow.Consented(ctx, a, f.user.ID)
	if err != nil || !a.ConsentOK {
		t.Fatalf("consent: %+v %v", a, err)
	}
	if s := f.next(t, a, v); s.Kind != account.StepDone || s.Who.SessionID != v.Session.ID {
		t.Errorf("after consent: %+v", s)
	}
	if s := f.next(t, f.request(t, "none"), v); s.Kind != account.StepDone {
		t.Errorf("a later request with the grant: %+v", s)
	}

	// A disabled account signs in again (its session is refused).
	if _, err := f.db.UpdateUser(ctx, f.user.ID, func(u storage.User) (storage.User, error) { u.Blocked = true; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if s := f.next(t, f.request(t), v); s.Kind != account.StepSignIn || account.ErrorCode(s.Refusal) != account.Forbidden {
		t.Errorf("disabled account: %+v", s)
	}
}

// TestFlowAllowlistRefusalRecorded: a session from outside the account's
// networks gets no code, and Apply (not Next) writes the refusal into the
// history.
func TestFlowAllowlistRefusalRecorded(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	u, err := f.db.UpdateUser(ctx, f.user.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = []string{"10.0.0.0/8"}
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.user = u
	v := f.signedInVisitor(t)
	a := f.request(t, "none")
	step := f.next(t, a, v)
	if step.Kind != account.StepFail || step.Code != "access_denied" {
		t.Fatalf("outside the allowlist, prompt=none: %+v", step)
	}
	if h, _ := f.db.ListLoginAttempts(ctx, f.user.ID, 10); len(h) != 0 {
		t.Fatalf("Next recorded history: %+v", h)
	}
	if err := f.flow.Apply(ctx, a, step, v); err != nil {
		t.Fatal(err)
	}
	h, _ := f.db.ListLoginAttempts(ctx, f.user.ID, 10)
	if len(h) != 1 || h[0].Success {
		t.Errorf("history after Apply: %+v", h)
	}
	stored, _ := f.db.GetAuthRequest(ctx, a.ID)
	if stored.FailCode != "access_denied" || stored.Completed {
		t.Errorf("record after the failure: %+v", stored)
	}
}

// TestFlowSecondFactorOnTheRecord: a password with a second factor owed
// leaves the person on the record, with no session; the second factor
// finishes the sign-in with the amr of both, and the record says who.
func TestFlowSecondFactorOnTheRecord(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	a := f.request(t)
	p, err := f.flow.FirstStepPassed(ctx, account.FirstStep{Request: a, User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if err != nil {
		t.Fatal(err)
	}
	if p.SessionSecret != "" || p.Request.PendingUserID != f.user.ID || p.Request.UserID != "" {
		t.Fatalf("after the password: %+v", p)
	}
	if s := f.next(t, p.Request, f.visitor()); s.Kind != account.StepSecondFactor {
		t.Errorf("pending: %+v", s)
	}
	p, err = f.flow.SecondFactorPassed(ctx, p.Request, "otp", false, f.visitor())
	if err != nil {
		t.Fatal(err)
	}
	if p.SessionSecret == "" || p.Request.UserID != f.user.ID || p.Request.PendingUserID != "" {
		t.Fatalf("after the second factor: %+v", p)
	}
	if want := []string{"pwd", "otp", "mfa"}; !equal(p.Request.AMR, want) {
		t.Errorf("amr %v, want %v", p.Request.AMR, want)
	}
	// Only once.
	if _, err := f.flow.SecondFactorPassed(ctx, p.Request, "otp", false, f.visitor()); !errors.Is(err, account.ErrPendingGone) {
		t.Errorf("second factor again: %v", err)
	}
}

// TestFlowPendingExpires: the second step waits five minutes, no more.
func TestFlowPendingExpires(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	p := f.owingSecondFactor(t)
	f.clock.Add(account.PendingLifetime + time.Second)
	if _, err := f.flow.PendingUser(ctx, p.Request); !errors.Is(err, account.ErrPendingGone) {
		t.Errorf("pending after its lifetime: %v", err)
	}
	if s := f.next(t, p.Request, f.visitor()); s.Kind != account.StepSignIn {
		t.Errorf("an expired pending step asks for the sign-in again: %+v", s)
	}
}

// TestFlowPortalRecord: a sign-in at the portal itself that owes a second
// factor gets a record of its own, bound to the browser, holding the page
// to return to; finishing removes it.
func TestFlowPortalRecord(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	rec := f.owingSecondFactorAtPortal(t)
	if rec.ID == "" || rec.ClientID != "" || rec.ReturnTo != "/security" || rec.BrowserID != flowBrowser || rec.PendingUserID != f.user.ID {
		t.Fatalf("portal record: %+v", rec)
	}
	if _, err := f.flow.Get(ctx, rec.ID, "another-browser"); !errors.Is(err, account.ErrOtherBrowser) {
		t.Errorf("another browser: %v", err)
	}
	p, err := f.flow.SecondFactorPassed(ctx, rec, "otp", false, f.visitor())
	if err != nil {
		t.Fatal(err)
	}
	if p.ReturnTo != "/security" || p.SessionSecret == "" || p.Request.ID != "" {
		t.Errorf("finished portal sign-in: %+v", p)
	}
	if _, err := f.db.GetAuthRequest(ctx, rec.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the portal record outlived its sign-in: %v", err)
	}
}

// TestFlowBindsOnce: the first browser owns a request; another is refused
// and changes nothing.
func TestFlowBindsOnce(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	a := f.request(t)
	if _, err := f.flow.Bind(ctx, a.ID, "intruder"); !errors.Is(err, account.ErrOtherBrowser) {
		t.Fatalf("second browser: %v", err)
	}
	stored, _ := f.db.GetAuthRequest(ctx, a.ID)
	if stored.BrowserID != flowBrowser {
		t.Errorf("owner now %q", stored.BrowserID)
	}
	// A finished record is gone for everyone.
	if err := f.flow.Fail(ctx, a.ID, "access_denied", "denied"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.flow.Get(ctx, a.ID, flowBrowser); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("a failed record: %v", err)
	}
	if err := f.flow.Fail(ctx, a.ID, "login_required", "again"); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("failing twice: %v", err)
	}
}

// TestFlowCancelPending: cancelling the second step keeps the app's request
// and forgets the person.
func TestFlowCancelPending(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	p := f.owingSecondFactor(t)
	if err := f.flow.CancelPending(ctx, p.Request); err != nil {
		t.Fatal(err)
	}
	a, err := f.flow.Get(ctx, p.Request.ID, flowBrowser)
	if err != nil || a.PendingUserID != "" {
		t.Fatalf("after cancel: %+v %v", a, err)
	}
	if s := f.next(t, a, f.visitor()); s.Kind != account.StepSignIn {
		t.Errorf("after cancel: %+v", s)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestFlowPortalRecordsCountWithTheirAddressBlock: the portal's own
// sign-in records are bounded like the provider's authorization requests,
// an IPv6 address by its /48 when the total limit picks whom to evict: a
// person with a password who signs in from many /64s of one block pushes
// out their own records, not another person's sign-in under way.
func TestFlowPortalRecordsCountWithTheirAddressBlock(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	limited := account.NewFlow(f.db, f.svc, storage.PendingLimits{Total: 3})

	// Someone else is signing in at the app, from an IPv4 address.
	now := f.clock.Now()
	other := storage.AuthRequest{ID: account.NewID(), ClientID: f.app.ID, RedirectURI: "https://wiki.example/cb", Scopes: []string{"openid"},
		ResponseType: "code", BrowserID: "browser-2", CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute),
		Origin: "198.51.100.7", OriginGroup: "198.51.100.7"}
	if _, err := f.db.CreateAuthRequest(ctx, other, storage.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	for i, ip := range []string{"2001:db8:1:1::1", "2001:db8:1:2::1", "2001:db8:1:3::1", "2001:db8:1:4::1"} {
		f.clock.Add(time.Second)
		v := f.visitor()
		v.IP = ip
		p, err := limited.FirstStepPassed(ctx, account.FirstStep{ReturnTo: "/", User: f.user, MayOweSecondFactor: true, Visitor: v})
		if err != nil {
			t.Fatalf("portal sign-in %d: %v", i, err)
		}
		if p.Request.OriginGroup != "2001:db8:1::/48" {
			t.Errorf("portal record from %s: origin group %q", ip, p.Request.OriginGroup)
		}
	}
	if _, err := f.db.GetAuthRequest(ctx, other.ID); err != nil {
		t.Errorf("the other person's sign-in was evicted for portal records of one /48: %v", err)
	}
}

// TestFlowPortalRecordHasNoConsentOrFailure: a portal sign-in record has no
// app, so nobody consents to it and no OAuth error ends it: the consent
// form posted with its ID stores no grant for an app "" and leaves the
// person's second step as it was.
func TestFlowPortalRecordHasNoConsentOrFailure(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	rec := f.owingSecondFactorAtPortal(t)
	if _, err := f.flow.Consented(ctx, rec, f.user.ID); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("consent to a portal record: %v", err)
	}
	if g, err := f.db.GetGrant(ctx, f.user.ID, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a grant to no app: %+v %v", g, err)
	}
	if err := f.flow.Fail(ctx, rec.ID, "access_denied", "the user denied the request"); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("an OAuth error for a portal record: %v", err)
	}
	if _, err := f.flow.PendingUser(ctx, mustGet(t, f, rec.ID)); err != nil {
		t.Errorf("the second step after the refused consent: %v", err)
	}
}

func mustGet(t *testing.T, f *flowFixture, id string) storage.AuthRequest {
	t.Helper()
	a, err := f.flow.Get(context.Background(), id, flowBrowser)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// clientsDown is the store with the client reads failing, as a database
// that went away would.
type clientsDown struct {
	storage.Store
	err error
}

func (c clientsDown) GetClient(context.Context, string) (storage.Client, error) {
	return storage.Client{}, c.err
}

// TestFlowNextStorageFaultIsInternal: a failed read of the app is a fault
// on our side (logged, 500), not a sign-in that "expired or was already
// used"; only a client that is gone makes the record gone.
func TestFlowNextStorageFaultIsInternal(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	a := f.request(t)
	v := f.signedInVisitor(t)
	fault := errors.New("disk on fire")
	down := account.NewFlow(clientsDown{Store: f.db, err: fault}, f.svc, storage.PendingLimits{})
	_, err := down.Next(ctx, a, v)
	if account.ErrorCode(err) != account.Internal || !errors.Is(err, fault) {
		t.Errorf("client read failed: %v (code %s)", err, account.ErrorCode(err))
	}
	gone := account.NewFlow(clientsDown{Store: f.db, err: storage.ErrNotFound}, f.svc, storage.PendingLimits{})
	if _, err := gone.Next(ctx, a, v); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("client gone: %v", err)
	}
}

// TestFlowSignInForAGoneRecordLeavesNoSession: when the record went
// (expired, evicted, finished in another tab) while the person typed their
// password, the browser gets "expired, start again" and no session: none
// may be left behind that the browser never got, listed on the person's
// sessions page as one they cannot recognise.
func TestFlowSignInForAGoneRecordLeavesNoSession(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	a := f.request(t)
	if err := f.db.DeleteAuthRequest(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	p, err := f.flow.FirstStepPassed(ctx, account.FirstStep{Request: a, User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if !errors.Is(err, account.ErrFlowGone) || p.SessionSecret != "" {
		t.Fatalf("sign-in for a gone record: %+v %v", p, err)
	}
	if sessions, err := f.svc.SignIn.Sessions(ctx, f.user.ID); err != nil || len(sessions) != 0 {
		t.Errorf("sessions left behind: %d %v", len(sessions), err)
	}
}

// TestFlowSecondFactorClaimedOnce: two second factors sent at once for the
// same pending step (both requests loaded the record before either
// finished) finish one sign-in: the later finds nothing owed and starts no
// session.
func TestFlowSecondFactorClaimedOnce(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	p := f.owingSecondFactor(t)
	loadedByBoth := p.Request
	if _, err := f.flow.SecondFactorPassed(ctx, loadedByBoth, "otp", false, f.visitor()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.flow.SecondFactorPassed(ctx, loadedByBoth, "recovery", false, f.visitor()); !errors.Is(err, account.ErrPendingGone) {
		t.Errorf("the second of two concurrent second factors: %v", err)
	}
	sessions, err := f.db.ListUserSessions(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 {
		t.Errorf("%d sessions after one pending step, want 1", len(sessions))
	}
}

// TestFlowPortalRecordWithoutRoom: when no pending sign-in can make room
// (every one holds an issued code), a portal sign-in that owes a second
// factor is told to try again later (503), and stores nothing.
func TestFlowPortalRecordWithoutRoom(t *testing.T) {
	f := newFlowFixture(t)
	ctx := context.Background()
	_, _, f.user = enrol(t, f.svc, f.db, f.clock, f.user)
	limited := account.NewFlow(f.db, f.svc, storage.PendingLimits{Total: 1})
	now := f.clock.Now()
	issued := storage.AuthRequest{ID: account.NewID(), ClientID: f.app.ID, RedirectURI: "https://wiki.example/cb", Scopes: []string{"openid"},
		ResponseType: "code", BrowserID: "browser-2", CodeIssued: true, CreatedAt: now, ExpiresAt: now.Add(time.Minute), Origin: "198.51.100.7"}
	if _, err := f.db.CreateAuthRequest(ctx, issued, storage.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	_, err := limited.FirstStepPassed(ctx, account.FirstStep{ReturnTo: "/", User: f.user, MayOweSecondFactor: true, Visitor: f.visitor()})
	if account.ErrorCode(err) != account.Unavailable {
		t.Fatalf("portal sign-in without room: %v, want Unavailable", err)
	}
	if sessions, _ := f.db.ListUserSessions(ctx, f.user.ID); len(sessions) != 0 {
		t.Errorf("%d sessions after a refused portal sign-in", len(sessions))
	}
}

// An app held for an administrator's approval again while a sign-in to it
// is under way is gone for that sign-in too (account.GetLiveClient): its
// consent page would show the unapproved registration's name.
func TestFlowAppHeldMidSignIn(t *testing.T) {
	f := newFlowFixture(t)
	a := f.request(t)
	if _, err := f.db.UpdateClient(context.Background(), f.app.ID, func(c storage.Client) (storage.Client, error) {
		c.PendingApproval = true
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.flow.Next(context.Background(), a, f.signedInVisitor(t)); !errors.Is(err, account.ErrFlowGone) {
		t.Errorf("Next for a held app = %v, want ErrFlowGone", err)
	}
}
