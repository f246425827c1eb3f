package account

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// The sign-in record is the authorization request (storage.AuthRequest):
// it carries the whole progress of a sign-in for an app, from the browser
// that opened it, through who passed the first step and owes a second
// factor, who signed in and how, the consent decision, to the end (a code
// for the app, or an OAuth error). A sign-in at the portal itself that
// owes a second factor gets a record too, with no client and the page to
// return to. Flow is the only writer of these records' sign-in fields; the
// portal reads them and shows pages, and the provider answers the app at
// the callback once a record says the sign-in is done or failed.

// FlowStore is the part of storage the sign-in flow needs.
type FlowStore interface {
	CreateAuthRequest(ctx context.Context, a storage.AuthRequest, limits storage.PendingLimits) (int, error)
	GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error
	GetClient(ctx context.Context, id string) (storage.Client, error)
	GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error)
	PutGrant(ctx context.Context, g storage.Grant, e *storage.AuditEvent, out ...storage.OutboxMessage) error
}

// Flow runs sign-ins on their records, with the rules of the areas it
// reaches: who may sign in (users), what they owe (credentials), and the
// sessions and history of a sign-in (sign-in).
type Flow struct {
	*core
	store       FlowStore
	users       *UserService
	credentials *CredentialService
	sessions    *SignInService
	limits      storage.PendingLimits
}

// MaxReturnTo bounds the return path a portal sign-in record keeps.
const MaxReturnTo = 2048

// PendingLifetime is how long someone who passed the first step has to show
// their second factor.
const PendingLifetime = 5 * time.Minute

// NewFlow returns the sign-in flow over store, applying acct's account
// rules. limits bound the portal's own sign-in records like the
// provider's authorization requests.
func NewFlow(store FlowStore, acct *Service, limits storage.PendingLimits) *Flow {
	return &Flow{core: acct.core, store: store, users: acct.Users, credentials: acct.Credentials, sessions: acct.SignIn, limits: limits}
}

var (
	// ErrFlowGone: the record is unknown, finished or expired.
	ErrFlowGone = Errorf(NotFound, "This sign-in request has expired or was already used. Go back to the application and start again.")
	// ErrOtherBrowser: the record belongs to another browser.
	ErrOtherBrowser = Errorf(NotFound, "This sign-in request was started in another browser. Go back to the application and start again here.")
	// ErrPendingGone: nobody owes a second factor on the record (any more).
	ErrPendingGone = Errorf(Unauthorized, "Your sign-in has timed out. Please sign in again.")
	errNoBrowser   = Errorf(Forbidden, "This form has expired or was not sent from this site. Go back, reload the page and try again.")
)

// Visitor is the browser at a step of the sign-in.
type Visitor struct {
	// BrowserID is the random ID in the browser's cookie that records are
	// bound to.
	BrowserID string
	// Session and User are the browser's signed-in session, nil if it has
	// none (or the step does not ask: the portal looks it up only while
	// nobody has signed in on the record itself).
	Session *storage.Session
	User    *storage.User
	IP      string
	// UserAgent is recorded with history entries.
	UserAgent string
}

// Get returns the unfinished record id of this browser.
func (f *Flow) Get(ctx context.Context, id, browserID string) (storage.AuthRequest, error) {
	a, err := f.load(ctx, id)
	if err != nil {
		return a, err
	}
	if !Owns(a, browserID) {
		return storage.AuthRequest{}, ErrOtherBrowser
	}
	return a, nil
}

// Owns tells whether the browser browserID opened record a.
func Owns(a storage.AuthRequest, browserID string) bool {
	return browserID != "" && subtle.ConstantTimeCompare([]byte(a.BrowserID), []byte(browserID)) == 1
}

func (f *Flow) load(ctx context.Context, id string) (storage.AuthRequest, error) {
	if id == "" {
		return storage.AuthRequest{}, ErrFlowGone
	}
	a, err := f.store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.AuthRequest{}, ErrFlowGone
	}
	if err != nil {
		return storage.AuthRequest{}, fmt.Errorf("load sign-in %q: %w", id, err)
	}
	if a.Completed || a.FailCode != "" || a.ClientID == "" && a.ReturnTo == "" {
		return storage.AuthRequest{}, ErrFlowGone
	}
	if !a.PushedUntil.IsZero() {
		// Pushed (RFC 9126) and not yet opened at /authorize, which
		// checks its app and opens it once: until then no page of the
		// sign-in takes it.
		return storage.AuthRequest{}, ErrFlowGone
	}
	noteClient(ctx, a.ClientID) // the audit log names the app of this request's events
	return a, nil
}

// Bind makes the browser browserID the owner of record id the first time a
// browser shows up with it, and refuses every other browser from then on:
// a request ID seen elsewhere (history, logs, a shoulder) is worth nothing.
func (f *Flow) Bind(ctx context.Context, id, browserID string) (storage.AuthRequest, error) {
	if browserID == "" {
		return storage.AuthRequest{}, errNoBrowser
	}
	a, err := f.load(ctx, id)
	if err != nil || a.BrowserID == browserID {
		return a, err
	}
	if a.BrowserID != "" {
		return storage.AuthRequest{}, ErrOtherBrowser
	}
	return f.update(ctx, id, func(a *storage.AuthRequest) error {
		if a.BrowserID != "" && a.BrowserID != browserID {
			return ErrOtherBrowser
		}
		a.BrowserID = browserID
		return nil
	})
}

// update applies change to record id in one write. An error of change's
// own (an *Error) is returned as it is; a record gone is ErrFlowGone.
func (f *Flow) update(ctx context.Context, id string, change func(*storage.AuthRequest) error) (storage.AuthRequest, error) {
	a, err := f.store.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		if a.Completed || a.FailCode != "" {
			return a, ErrFlowGone
		}
		return a, change(&a)
	})
	var ae *Error
	switch {
	case err == nil:
		return a, nil
	case errors.As(err, &ae):
		return storage.AuthRequest{}, err
	case errors.Is(err, storage.ErrNotFound):
		return storage.AuthRequest{}, ErrFlowGone
	}
	return storage.AuthRequest{}, fmt.Errorf("update sign-in %q: %w", id, err)
}

// StepKind is what a sign-in needs next.
type StepKind int

const (
	// StepSignIn: show the sign-in page.
	StepSignIn StepKind = iota
	// StepSecondFactor: the person on the record owes a second factor.
	StepSecondFactor
	// StepEnrol: the person must set up a second factor first
	// (require_2fa).
	StepEnrol
	// StepConsent: ask the person to allow the app the scopes.
	StepConsent
	// StepDone: the person is signed in for the request; Apply completes
	// it and the provider hands out the code.
	StepDone
	// StepFail: the request ends with an OAuth error (Code,
	// Description), for a request that may not show a page (prompt=none).
	StepFail
	// StepDenied: the person signed in is not allowed to use the app
	// (its allowed groups). The record ends with access_denied for the
	// app; the person is shown why (Refusal) and may go on to the app,
	// which gets the error at the callback.
	StepDenied
)

// Step is the next step of a sign-in.
type Step struct {
	Kind StepKind
	// Who is signed in (StepConsent, StepDone): the user, session and
	// how and when they authenticated.
	Who    Completion
	User   storage.User
	Client storage.Client
	// Refusal says why the person must sign in again (StepSignIn): the
	// account is disabled, or outside its allowed networks. Nil for a
	// first sign-in.
	Refusal error
	// Code and Description are the OAuth error a request that may not show
	// pages (prompt=none) ends with instead of this step.
	Code, Description string

	networkRefused bool // Apply records the refusal in the user's history
	groupRefused   bool // Apply logs the refusal
}

// Next is the one dispatcher of the sign-in flow: it reads the record and
// the browser's session and returns the next step. It writes nothing;
// Apply does.
func (f *Flow) Next(ctx context.Context, a storage.AuthRequest, v Visitor) (Step, error) {
	if f.owesSecondFactor(a) {
		return ask(a, Step{Kind: StepSecondFactor, Code: "login_required", Description: "the user has not finished signing in"}), nil
	}
	who, ok := f.SignedIn(a, v)
	if !ok {
		return ask(a, Step{Kind: StepSignIn, Code: "login_required", Description: "the user is not signed in"}), nil
	}
	user, refused, err := f.admit(ctx, who, v)
	if err != nil || refused != nil {
		return ask(a, deref(refused)), err
	}
	step := Step{Who: who, User: user}
	if step.Client, err = f.client(ctx, a); err != nil {
		return Step{}, err
	}
	if a.Subject != "" && who.UserID != a.Subject {
		// The claims parameter named the user (sub with a value): no ID
		// token for anyone else (OIDC Core §5.5.1).
		step.Kind, step.Code, step.Description = StepFail, "access_denied", "the user signed in is not the one the request names"
		return step, nil
	}
	// Who may use the app is decided once the person is known, before
	// anything they owe: a second factor to set up, or consent, would be
	// asked for an app they cannot use. An existing session signing into
	// the app comes through here too.
	if err := MayUseClient(user, step.Client); err != nil {
		step.Kind, step.Refusal, step.groupRefused = StepDenied, err, true
		step.Code, step.Description = "access_denied", "the user is not allowed to use this application"
		if slices.Contains(a.Prompt, "none") {
			step.Kind = StepFail
		}
		return step, nil
	}
	// The class of authentication the app asks for (acr_values, or the
	// claims parameter's acr): a session below it signs in again (and the
	// sign-in then asks for the second factor: FirstStepPassed); a sign-in
	// that meets none of the essential classes fails rather than giving
	// the app a weaker one. Any one of them will do (OIDC Core
	// §5.5.1.1), not only the strongest the user could have reached.
	switch target, unmet, err := f.acrTarget(ctx, a, user); {
	case err != nil:
		return Step{}, err
	case unmet || a.UserID != "" && a.ACREssential && amrLevel(who.AMR) < acrFloor(a.ACRValues):
		step.Kind, step.Code, step.Description = StepFail, errUnmetACR, "the user cannot meet the requested authentication context class"
		return step, nil
	case a.UserID == "" && amrLevel(who.AMR) < target:
		return ask(a, Step{Kind: StepSignIn, User: user, Code: "login_required", Description: "the user must sign in again with a stronger method"}), nil
	}
	switch owed, err := f.owed(ctx, a, user, step.Client); {
	case err != nil:
		return Step{}, err
	case owed != nil:
		step.Kind, step.Code, step.Description = owed.Kind, owed.Code, owed.Description
		return ask(a, step), nil
	}
	step.Kind = StepDone
	return step, nil
}

// client is the app record a is for; ErrFlowGone for a portal record (no
// app to answer) or an app deleted since.
func (f *Flow) client(ctx context.Context, a storage.AuthRequest) (storage.Client, error) {
	if a.ClientID == "" {
		return storage.Client{}, ErrFlowGone
	}
	c, err := GetLiveClient(ctx, f.store, a.ClientID) // held for approval since: gone too
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return c, ErrFlowGone
	case err != nil:
		return c, fmt.Errorf("load client %q of sign-in %q: %w", a.ClientID, a.ID, err)
	}
	return c, nil
}

// ask turns a step that shows a page into the failure it stands for when
// the app asked for no pages (prompt=none).
func ask(a storage.AuthRequest, s Step) Step {
	if s.Kind < StepDone && slices.Contains(a.Prompt, "none") {
		s.Kind = StepFail
	}
	return s
}

// admit loads the signed-in user and checks they may use the app from
// here: an account disabled since, or a browser that moved outside the
// account's allowed networks, signs in again (or fails, for prompt=none):
// refused is that step.
func (f *Flow) admit(ctx context.Context, who Completion, v Visitor) (user storage.User, refused *Step, err error) {
	user, err = f.users.ActiveUser(ctx, who.UserID)
	if err != nil {
		if ErrorCode(err) == Internal {
			return user, nil, err
		}
		return user, &Step{Kind: StepSignIn, Refusal: err, Code: "login_required", Description: "the user must sign in again"}, nil
	}
	if err := f.sessions.CheckNetwork(user, v.IP); err != nil {
		return user, &Step{Kind: StepSignIn, Refusal: err, Code: "access_denied", Description: "the user may not sign in from this network", Who: who, User: user, networkRefused: true}, nil
	}
	return user, nil, nil
}

func deref(s *Step) Step {
	if s == nil {
		return Step{}
	}
	return *s
}

// owed is the step the signed-in user owes before the app gets a code:
// enrolling a second factor, or consent; nil when none.
func (f *Flow) owed(ctx context.Context, a storage.AuthRequest, u storage.User, c storage.Client) (*Step, error) {
	if needs, err := f.credentials.NeedsEnrolment(ctx, u); err != nil || needs {
		return &Step{Kind: StepEnrol, Code: "interaction_required", Description: "the user must set up two-factor authentication"}, err
	}
	if f.needsConsent(ctx, a, c, u.ID) {
		return &Step{Kind: StepConsent, Code: "consent_required", Description: "the user has not granted these scopes"}, nil
	}
	return nil, nil
}

// SignedIn is who is signed in for record a: whoever signed in during the
// request, or else the browser's session if it answers the request
// (prompt=login, max_age and an id_token_hint naming someone else need a
// new sign-in). prompt=select_account is a new sign-in too: a browser
// holds one session, so choosing an account is signing in as it (the
// sign-in page offers the current account's name), as Keycloak does. So
// is a login_hint that names someone else: the app expects another
// account than the one signed in here, and the sign-in page offers the
// hinted one (OIDC Core §3.1.2.1).
func (f *Flow) SignedIn(a storage.AuthRequest, v Visitor) (Completion, bool) {
	if a.UserID != "" {
		return Completion{UserID: a.UserID, SessionID: a.SessionID, AMR: a.AMR, AuthTime: a.AuthTime}, true
	}
	if v.Session == nil || v.User == nil || !f.sessionAnswers(a, *v.Session, *v.User) {
		return Completion{}, false
	}
	return Completion{UserID: v.User.ID, SessionID: v.Session.ID, AMR: v.Session.AMR, AuthTime: v.Session.AuthTime}, true
}

func (f *Flow) sessionAnswers(a storage.AuthRequest, sess storage.Session, u storage.User) bool {
	switch {
	case slices.Contains(a.Prompt, "login"), slices.Contains(a.Prompt, "select_account"):
		return false
	case a.MaxAge != nil && f.now().Sub(sess.AuthTime) > maxAgeDuration(*a.MaxAge):
		return false
	}
	// The subs a pairwise app sends back (id_token_hint, the claims
	// parameter's sub, login_hint) arrive read back into user IDs by the
	// provider, for that app's sector only (Subjects.UserOf): comparing
	// IDs here is all it takes, with no client to load.
	return (a.HintUserID == "" || a.HintUserID == u.ID) && (a.Subject == "" || a.Subject == u.ID) &&
		(a.LoginHintUserID == "" || a.LoginHintUserID == u.ID) && loginHintFits(a.LoginHint, u)
}

// loginHintFits tells whether the login_hint hint ("" for none) may name
// u: it is u's username or email address, in any case, as the sign-in
// page takes either, or u's ID, the sub an app with public subjects knows
// u by. A hint that is none of these names someone else. A pairwise
// app's own pairwise sub is not compared here: the provider read it back
// into AuthRequest.LoginHintUserID. The user ID sent to a pairwise app
// fits too, though it is not the sub that app knows: it tells the app no
// more than a username or email hint does (whether this browser's person
// is the one it names), which it could learn anyway by asking with no
// hint and comparing with a colluding public app; refusing it would only
// make a new sign-in of someone the app named rightly.
func loginHintFits(hint string, u storage.User) bool {
	hint = strings.TrimSpace(hint)
	return hint == "" || hint == u.ID || strings.EqualFold(hint, u.Username) || u.Email != "" && strings.EqualFold(hint, u.Email)
}

// maxAgeDuration is a max_age of secs seconds as a time.Duration. One
// beyond what a Duration holds (some 292 years) is as good as no limit:
// multiplied as it is, it would wrap, often below zero, and ask everyone
// to sign in again.
func maxAgeDuration(secs uint) time.Duration {
	return time.Duration(min(secs, uint(math.MaxInt64/int64(time.Second)))) * time.Second
}

func (f *Flow) needsConsent(ctx context.Context, a storage.AuthRequest, c storage.Client, userID string) bool {
	if c.SkipConsent || a.ConsentOK {
		return false
	}
	if slices.Contains(a.Prompt, "consent") {
		return true
	}
	g, err := f.store.GetGrant(ctx, userID, c.ID)
	if err != nil {
		return true
	}
	for _, sc := range ConsentScopes(a) {
		if !slices.Contains(g.Scopes, sc) {
			return true
		}
	}
	return false
}

// Apply writes what step decided: a finished sign-in (StepDone) or a
// failure (StepFail) on the record, and a refusal at the allowlist in the
// user's history. Every step Next returns is applied, also one that shows
// a page: a refusal answered with the sign-in page is recorded too.
func (f *Flow) Apply(ctx context.Context, a storage.AuthRequest, step Step, v Visitor) error {
	if step.networkRefused {
		_ = f.sessions.CheckNetworkAt(ctx, step.User, v.IP, v.UserAgent, step.Who.AMR)
	}
	switch step.Kind {
	case StepDone:
		_, err := f.update(ctx, a.ID, func(a *storage.AuthRequest) error {
			a.UserID, a.SessionID, a.AMR, a.AuthTime = step.Who.UserID, step.Who.SessionID, step.Who.AMR, step.Who.AuthTime
			a.Completed = true
			return nil
		})
		return err
	case StepFail, StepDenied:
		if step.groupRefused {
			f.log.InfoContext(ctx, "sign-in refused: the user is not in the app's allowed groups", "client_id", step.Client.ID, "user_id", step.User.ID)
		}
		return f.Fail(ctx, a.ID, step.Code, step.Description)
	}
	return nil
}

// Fail ends record id with an OAuth error for the app. A portal sign-in
// record has no app to tell: it is refused as gone.
func (f *Flow) Fail(ctx context.Context, id, code, description string) error {
	_, err := f.update(ctx, id, func(a *storage.AuthRequest) error {
		if a.ClientID == "" {
			return ErrFlowGone
		}
		a.FailCode, a.FailDescription = code, description
		return nil
	})
	return err
}

// Consented records that the person signed in for record a allows the app
// the scopes it asked for (kept as a grant for later requests). A portal
// sign-in record has no app to consent to: it is refused as gone.
func (f *Flow) Consented(ctx context.Context, a storage.AuthRequest, userID string) (storage.AuthRequest, error) {
	if a.ClientID == "" {
		return a, ErrFlowGone
	}
	now := f.now()
	g, err := f.store.GetGrant(ctx, userID, a.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		g, err = storage.Grant{UserID: userID, ClientID: a.ClientID, CreatedAt: now}, nil
	}
	if err != nil {
		return a, fmt.Errorf("load grant of %q to %q: %w", userID, a.ClientID, err)
	}
	consented := ConsentScopes(a)
	for _, sc := range consented {
		if !slices.Contains(g.Scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	g.UpdatedAt = now
	// The consent and its audit event share one commit.
	e := f.auditEvent(ctx, userActor(userID), storage.AuditEvent{Type: EventConsentGranted, TargetUserID: userID, ClientID: a.ClientID,
		Changes: []storage.AuditChange{{Field: "scopes", After: strings.Join(consented, " ")}}})
	out := f.reactions(ctx, e)
	if err := f.store.PutGrant(ctx, g, &e, out...); err != nil {
		return a, fmt.Errorf("store grant of %q to %q: %w", userID, a.ClientID, err)
	}
	f.reacted(out)
	return f.update(ctx, a.ID, func(a *storage.AuthRequest) error {
		a.ConsentOK = true
		return nil
	})
}

// FirstStep is a passed first step of a sign-in: a password, a passkey
// (which is a second factor in itself) or an upstream provider.
type FirstStep struct {
	// Request is the record the sign-in is for; ID "" for a sign-in at the
	// portal itself, which returns to ReturnTo.
	Request  storage.AuthRequest
	ReturnTo string
	User     storage.User
	// AMR is how the step authenticated the person; nil means Keyport's
	// password ("pwd").
	AMR []string
	// NewHash is a rehash of the password to store ("" for none).
	NewHash string
	// MayOweSecondFactor is false when the step already proved two factors
	// (a passkey).
	MayOweSecondFactor bool
	Visitor            Visitor
	// DeviceProof is the browser's remembered-device cookie, if any.
	DeviceProof string
}

// Progress is where a sign-in stands after a step, for the browser.
type Progress struct {
	// Request is the record after the step (ID "" when there is none).
	Request storage.AuthRequest
	// SessionSecret, when set, is the new session's secret for the
	// browser's cookie: the person is signed in.
	SessionSecret string
	// DeviceSecret, when set, is the cookie of a newly remembered device.
	DeviceSecret string
	// ReturnTo is where a finished portal sign-in goes (no app).
	ReturnTo string
}

// FirstStepPassed records a passed first step: when the person owes a
// second factor in this browser, the record says so (a portal sign-in gets
// a record of its own), and no session starts; otherwise the sign-in is
// finished and the record says who signed in. A password's rehash is
// stored either way.
func (f *Flow) FirstStepPassed(ctx context.Context, s FirstStep) (Progress, error) {
	owes := false
	if s.MayOweSecondFactor {
		// A passkey that did not verify the person is one factor, a
		// thing they have: the factor of another kind they set up (an
		// app code) is owed as after a password. Another passkey would
		// be the same kind again (twoFactorAMR), so a person with
		// passkeys alone owes nothing more.
		has := f.credentials.HasSecondFactor
		if keyAMR(s.AMR) {
			has = func(_ context.Context, u storage.User) (bool, error) { return HasTOTP(u), nil }
		}
		var err error
		if owes, err = f.owes(ctx, s.User, s.DeviceProof, s.Visitor.IP, has); err != nil {
			return Progress{}, err
		}
		// An app that asks for two factors (acr) gets them: a remembered
		// device does not stand in for the second factor then.
		if !owes && s.Request.ClientID != "" {
			target, _, err := f.acrTarget(ctx, s.Request, s.User)
			if err != nil {
				return Progress{}, err
			}
			if target >= acrLevel(ACRSecondFactor) {
				if owes, err = has(ctx, s.User); err != nil {
					return Progress{}, err
				}
			}
		}
	}
	if !owes {
		return f.signIn(ctx, s.Request, s.ReturnTo, s.User, s.NewHash, orPassword(s.AMR), s.Visitor)
	}
	if err := f.sessions.StoreRehash(ctx, s.User, s.NewHash); err != nil {
		return Progress{}, err
	}
	pending := func(a *storage.AuthRequest) {
		a.PendingUserID, a.PendingAMR, a.PendingSince = s.User.ID, orPassword(s.AMR), f.now()
	}
	if s.Request.ID == "" {
		a, err := f.createPortalRecord(ctx, s.ReturnTo, s.Visitor, pending)
		return Progress{Request: a}, err
	}
	a, err := f.update(ctx, s.Request.ID, func(a *storage.AuthRequest) error {
		pending(a)
		return nil
	})
	return Progress{Request: a}, err
}

// keyAMR tells whether amr is that of a passkey that did not verify the
// person: "hwk" or "swk" first, without "mfa" (FinishPasskeyLogin). An
// upstream provider's ("fed" first) is not.
func keyAMR(amr []string) bool {
	return len(amr) > 0 && (amr[0] == "hwk" || amr[0] == "swk") && !slices.Contains(amr, "mfa")
}

func orPassword(amr []string) []string {
	if len(amr) == 0 {
		return []string{"pwd"}
	}
	return amr
}

// owes tells whether u must show a second factor in this browser after the
// first step: they have one, and this is not a device they told Keyport to
// remember.
func (f *Flow) owes(ctx context.Context, u storage.User, deviceProof, ip string, hasSecondFactor func(context.Context, storage.User) (bool, error)) (bool, error) {
	has, err := hasSecondFactor(ctx, u)
	if err != nil || !has {
		return false, err
	}
	return !f.credentials.DeviceTrusted(ctx, u, deviceProof, ip), nil
}

// createPortalRecord stores the record of a portal sign-in (no app) that
// owes a second factor, bound to the browser.
func (f *Flow) createPortalRecord(ctx context.Context, returnTo string, v Visitor, fill func(*storage.AuthRequest)) (storage.AuthRequest, error) {
	if v.BrowserID == "" {
		return storage.AuthRequest{}, errNoBrowser
	}
	now := f.now()
	a := storage.AuthRequest{
		ID: NewID(), ReturnTo: returnTo, BrowserID: v.BrowserID,
		CreatedAt: now, ExpiresAt: now.Add(PendingLifetime), Origin: throttle.Address(v.IP),
		OriginGroup: throttle.AddressGroup(v.IP),
	}
	if a.ReturnTo == "" || len(a.ReturnTo) > MaxReturnTo {
		a.ReturnTo = "/"
	}
	fill(&a)
	if _, err := f.store.CreateAuthRequest(ctx, a, f.limits); err != nil {
		if errors.Is(err, storage.ErrLimitReached) {
			return storage.AuthRequest{}, Errorf(Unavailable, "Too many sign-ins are under way. Please try again in a minute.")
		}
		return storage.AuthRequest{}, fmt.Errorf("store portal sign-in: %w", err)
	}
	return a, nil
}

// signIn finishes a sign-in: the session starts, and the record (if any)
// says who signed in. A portal record has done its job and goes.
func (f *Flow) signIn(ctx context.Context, a storage.AuthRequest, returnTo string, u storage.User, newHash string, amr []string, v Visitor) (Progress, error) {
	if a.ClientID != "" {
		ctx = withClient(ctx, a.ClientID) // the app the sign-in's audit event names
	}
	_, secret, sess, err := f.sessions.FinishSignIn(ctx, u, newHash, Credentials{IP: v.IP, UserAgent: v.UserAgent}, amr)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{SessionSecret: secret}
	if a.ID == "" {
		p.ReturnTo = returnTo
		return p, nil
	}
	if a.ClientID == "" {
		p.ReturnTo = a.ReturnTo
		if err := f.store.DeleteAuthRequest(ctx, a.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return Progress{}, fmt.Errorf("delete portal sign-in %q: %w", a.ID, err)
		}
		return p, nil
	}
	p.Request, err = f.update(ctx, a.ID, func(a *storage.AuthRequest) error {
		a.PendingUserID, a.PendingAMR, a.PendingSince = "", nil, time.Time{}
		a.UserID, a.SessionID, a.AMR, a.AuthTime = u.ID, sess.ID, amr, sess.AuthTime
		return nil
	})
	if err != nil {
		// The record went meanwhile (expired, evicted, finished in
		// another tab): the browser is told to start again and gets no
		// session, so none is left that it never held.
		if endErr := f.sessions.EndSession(ctx, secret); endErr != nil {
			err = errors.Join(err, fmt.Errorf("end the session of a sign-in whose record is gone: %w", endErr))
		}
		return Progress{}, err
	}
	return p, nil
}

// owesSecondFactor tells whether someone passed the first step on record a
// and still has time to show their second factor.
func (f *Flow) owesSecondFactor(a storage.AuthRequest) bool {
	return a.PendingUserID != "" && f.now().Sub(a.PendingSince) <= PendingLifetime
}

// PendingUser is the person who passed the first step on record a and owes
// a second factor; ErrPendingGone when nobody does (any more).
func (f *Flow) PendingUser(ctx context.Context, a storage.AuthRequest) (storage.User, error) {
	if !f.owesSecondFactor(a) {
		return storage.User{}, ErrPendingGone
	}
	return f.users.ActiveUser(ctx, a.PendingUserID)
}

// SecondFactorPassed finishes the sign-in of the person pending on record
// a, who just showed a second factor by method ("otp", "recovery", "hwk"
// or "swk"), and remembers the device when they asked.
func (f *Flow) SecondFactorPassed(ctx context.Context, a storage.AuthRequest, method string, remember bool, v Visitor) (Progress, error) {
	u, err := f.PendingUser(ctx, a)
	if err != nil {
		return Progress{}, err
	}
	// The pending step is taken in one write before the session starts:
	// of two second factors sent at once (a code from the app and a
	// recovery code, two tabs), one finishes the sign-in and the other
	// finds nothing owed.
	var first []string
	a, err = f.update(ctx, a.ID, func(r *storage.AuthRequest) error {
		if r.PendingUserID != u.ID || !f.owesSecondFactor(*r) {
			return ErrPendingGone
		}
		first = r.PendingAMR
		r.PendingUserID, r.PendingAMR, r.PendingSince = "", nil, time.Time{}
		return nil
	})
	if err != nil {
		return Progress{}, err
	}
	var device string
	if remember && f.policy().TrustedDeviceLifetime > 0 {
		if device, err = f.credentials.TrustDevice(ctx, u, v.IP, v.UserAgent); err != nil {
			return Progress{}, err
		}
	}
	p, err := f.signIn(ctx, a, a.ReturnTo, u, "", twoFactorAMR(first, method), v)
	p.DeviceSecret = device
	return p, err
}

// twoFactorAMR is the amr (RFC 8176) of a sign-in in two steps: the first
// step's ("pwd" for the password, "fed" and the upstream's own for an
// upstream provider), the second factor's own value, and "mfa" because
// there were two. A recovery code is a one-time password, so it is "otp"
// like an app code; passkeys are "hwk" (or "swk").
//
// A passkey after a passkey that did not verify the person (keyAMR) is
// the same kind of factor twice, a thing they have: no "mfa", and never
// the ["hwk", "mfa"] of a passkey that verified them (amrLevel).
func twoFactorAMR(first []string, method string) []string {
	if method == "recovery" {
		method = "otp"
	}
	amr := slices.Clone(orPassword(first))
	if keyAMR(first) && keyAMR([]string{method}) {
		if !slices.Contains(amr, method) {
			amr = append(amr, method)
		}
		return amr
	}
	for _, m := range []string{method, "mfa"} {
		if !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	return amr
}

// CancelPending abandons the pending second step on record a (wrong
// account, no device at hand); the record goes back to the sign-in page,
// or, for a portal sign-in, is gone.
func (f *Flow) CancelPending(ctx context.Context, a storage.AuthRequest) error {
	if a.ClientID == "" {
		if err := f.store.DeleteAuthRequest(ctx, a.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete portal sign-in %q: %w", a.ID, err)
		}
		return nil
	}
	_, err := f.update(ctx, a.ID, func(a *storage.AuthRequest) error {
		a.PendingUserID, a.PendingAMR, a.PendingSince = "", nil, time.Time{}
		return nil
	})
	return err
}
