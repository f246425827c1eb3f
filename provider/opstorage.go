package provider

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/dpop"
	"github.com/keyport/keyport/loglimit"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Store is the part of storage the provider needs.
type Store interface {
	storage.Users
	storage.Clients
	storage.AuthRequests
	storage.Tokens
	storage.DeviceAuthorizations
}

// Lifetimes of what the provider issues.
type Lifetimes struct {
	Code        time.Duration
	Access      time.Duration
	ID          time.Duration
	Refresh     time.Duration // absolute life of a refresh-token family
	RefreshIdle time.Duration
	AuthRequest time.Duration
	// RefreshReuseGrace is how long after a rotation the previous refresh
	// token still gets the same successor (a retry) instead of revoking its
	// family (reuse); 0 turns the grace off.
	RefreshReuseGrace time.Duration
}

// opStorage implements zitadel's op.Storage on our store. It translates
// records and errors and decides nothing about how people sign in.
type opStorage struct {
	store    Store
	keys     *KeyManager
	life     Lifetimes
	loginURL string
	issuer   string
	now      func() time.Time
	log      *slog.Logger
	throttle *throttle.Limiter // client secrets; nil: none
	// checkRefresh is Options.CheckRefresh.
	checkRefresh func(ctx context.Context, u storage.User, clientID, ip string) error
	// observer is Options.Observer (nil: none).
	observer Observer
	// tokens seals a refresh token for its reuse grace.
	tokens *tokenCrypto
	// pending bounds the authorization requests waiting for a sign-in.
	pending storage.PendingLimits
	// floodLog is log for the lines a flood of /authorize requests repeats
	// (refusals and evictions for pending): one a minute of each, then a
	// count of those held back (loglimit).
	floodLog *slog.Logger
	// secrets makes parallel checks of one client secret one guess.
	secrets *throttle.Guesses[clientCheck]
	// lifeNow, when set, replaces life (Options.LifetimesInForce); read
	// them through inForce.
	lifeNow func() Lifetimes
	// assertions checks client assertions (clientassertion.go).
	assertions *assertions
	// dpopNonces makes and checks DPoP nonces (dpop.go).
	dpopNonces dpop.Nonces

	// subjects decides the sub an app knows a person by.
	subjects *account.Subjects
}

var (
	_ op.Storage                   = (*opStorage)(nil)
	_ op.ClientCredentialsStorage  = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest = (*opStorage)(nil)
)

func (s *opStorage) Health(context.Context) error { return nil }

// pairwiseLoginHint reads the login_hint hint of a request of app c: a
// pairwise app knows the person only by its pairwise sub, and sends that
// as the hint; it is returned as the user ID it names (userID), the hint
// itself then "" (it is no login name, and the sign-in page must not show
// it as one, nor anything of the person it names). Only a sub of c's own
// sector reads back (Subjects.UserOf): another sector's value, or a
// public app's hint, stays the hint it was, a login name (or the user ID)
// the flow compares as before (account.Flow.SignedIn). One decryption,
// no store read: the client is at hand here, so the flow compares IDs.
func (s *opStorage) pairwiseLoginHint(c storage.Client, hint string) (loginHint, userID string) {
	if hint == "" || !account.Pairwise(c) || s.subjects == nil {
		return hint, ""
	}
	if id, ok := s.subjects.UserOf(c, strings.TrimSpace(hint)); ok {
		return "", id
	}
	return hint, ""
}

// internal logs err and returns a server_error that reveals nothing.
func (s *opStorage) internal(ctx context.Context, msg string, err error) *oidc.Error {
	s.log.ErrorContext(ctx, msg, "err", err)
	return oidc.ErrServerError().WithParent(fmt.Errorf("%s: %w", msg, err))
}

func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintUserID string) (op.AuthRequest, error) {
	c, err := s.getClient(ctx, req.ClientID)
	if err != nil {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client")
	}
	if msg := redirectURIProblem(req.RedirectURI); msg != "" {
		// zitadel let it through: registered, or a native app's loopback
		// address, of which it compares only path and query. Never
		// redirected to (RFC 6749 §4.1.2.1): the person sees why.
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("%s", msg)
	}
	if p, ok := authorizeProblemFrom(ctx); ok {
		if p.param == "state" {
			// zitadel sends the error with this request's state, which
			// RFC 6749 asks for; an oversized one is not echoed, or the
			// refusal would carry what it refuses.
			req.State = ""
		}
		return nil, p.err
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if req.CodeChallenge != "" && !validS256Challenge(req.CodeChallenge) {
		// No code_verifier (tokenclient.go) can match it: refused here,
		// before anyone signs in for a code that cannot be redeemed.
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge must be the 43 base64url characters of a SHA-256 (RFC 7636 §4.2)")
	}
	if c.Public && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	}
	resources, rerr := grantResources(c, resourcesFrom(ctx)) // resources.go
	if rerr != nil {
		return nil, rerr
	}
	if hintUserID != "" {
		// The id_token_hint's sub is the one this app knows the person
		// by; the sign-in compares user IDs.
		var ok bool
		if hintUserID, ok = s.subjects.UserOf(c, hintUserID); !ok {
			return nil, oidc.ErrInvalidRequest().WithDescription("id_token_hint was not issued for this app's sector")
		}
	}
	loginHint, loginHintUserID := s.pairwiseLoginHint(c, req.LoginHint)
	now := s.now()
	a := storage.AuthRequest{
		ID:                  account.NewID(),
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		State:               req.State,
		Nonce:               req.Nonce,
		Scopes:              allowedScopes(c, req.Scopes),
		ResponseType:        string(req.ResponseType),
		ResponseMode:        string(req.ResponseMode),
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt:              req.Prompt,
		MaxAge:              req.MaxAge,
		LoginHint:           loginHint,
		HintUserID:          hintUserID,
		ACRValues:           req.ACRValues,
		CreatedAt:           now,
		ExpiresAt:           now.Add(s.inForce().AuthRequest),
		Origin:              originOf(clientip.FromContext(ctx)),
		OriginGroup:         originGroupOf(clientip.FromContext(ctx)),
		Resources:           resources,
		LoginHintUserID:     loginHintUserID,
	}
	for _, l := range req.UILocales {
		a.UILocales = append(a.UILocales, l.String())
	}
	if err := applyClaimsRequest(&a, c, claimsRequestFrom(ctx), s.subjects); err != nil {
		return nil, err
	}
	if n, ok := pushedFrom(ctx); ok {
		markPushed(&a, n)
	}
	// DPoP (dpophttp.go): the key dpop_jkt or a pushed request's proof
	// binds the code to (RFC 9449 §10), and that proof's jti.
	a.DPoPJKT = dpopJKTFrom(ctx)
	if err := s.spendPushedDPoPProof(ctx); err != nil {
		return nil, err
	}
	evicted, err := s.store.CreateAuthRequest(ctx, a, s.pending)
	if errors.Is(err, storage.ErrLimitReached) {
		// Every pending sign-in of this address, or of all, has its code
		// and is about to be exchanged (or to expire): RFC 6749 §4.1.2.1.
		s.floodLog.WarnContext(ctx, "too many pending sign-ins, all of them with a code issued; refused a new one",
			"per_address_limit", s.pending.PerOrigin, "total_limit", s.pending.Total, "client_ip", clientip.FromContext(ctx))
		return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many sign-ins are under way; try again in a minute"}
	}
	if errors.Is(err, storage.ErrTooLarge) {
		// Every parameter is bounded well below this (authorize.go); the
		// store's own bound is the backstop.
		return nil, oidc.ErrInvalidRequest().WithDescription("the authorization request is too large")
	}
	if err != nil {
		return nil, s.internal(ctx, "store auth request", err)
	}
	if evicted > 0 {
		s.floodLog.WarnContext(ctx, "too many pending sign-ins; evicted some of the busiest address to make room (a flood of /authorize requests?)",
			"evicted", evicted, "per_address_limit", s.pending.PerOrigin, "total_limit", s.pending.Total, "client_ip", clientip.FromContext(ctx))
	}
	return &authRequest{a: a}, nil
}

// floodLogger limits log to one line a minute of each message, then a
// count of those held back: a flood of /authorize requests should be
// visible, not fill the log.
func floodLogger(log *slog.Logger) *slog.Logger {
	return slog.New(loglimit.New(log.Handler(), loglimit.Options{Level: slog.LevelWarn, Burst: 1, Interval: time.Minute}))
}

func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := s.store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oidc.ErrInvalidRequest().WithDescription("authorization request not found or expired")
	}
	if err != nil {
		return nil, s.internal(ctx, "load auth request", err)
	}
	noteResponseMode(ctx, a)
	return &authRequest{a: a}, nil
}

// AuthRequestByCode redeems a code for the client the middleware
// authenticated (codeClientFrom). A code is used once: it is spent even if
// the exchange then fails (a wrong code_verifier or redirect_uri), as OAuth
// 2.1 asks, but a failed exchange issues nothing, so its retry revokes
// nothing. Only a replay of a code that issued tokens revokes them: those
// tokens and no others (RFC 6749 §4.1.2), and only when the client
// presenting it proves it is the code's (codeClient.provesReplay).
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	client, ok := codeClientFrom(ctx)
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	hash := account.HashSecret(code)
	// The exchange's tokens get their IDs now, so that the redemption
	// records them: a replay then revokes them, with no second write to
	// tie the tokens to the code (CreateCodeTokens).
	issue := storage.IssuedTokens{AccessTokenID: account.NewOrderedID(), FamilyID: account.NewOrderedID()}
	a, err := s.store.RedeemCode(ctx, hash, client.id, issue)
	if errors.Is(err, storage.ErrTokenReused) {
		s.replayed(ctx, client, hash, a)
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid, expired or already used code")
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid, expired or already used code")
	}
	if err != nil {
		return nil, s.internal(ctx, "redeem code", err)
	}
	if a.DPoPJKT != "" && !provesKey(ctx, a.DPoPJKT) {
		// RFC 9449 §10: the code is bound to the key dpop_jkt named.
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is bound to a DPoP key: the token request must carry a proof of that key")
	}
	// The code is spent even when it is refused here, as for a wrong
	// code_verifier.
	//
	// A user blocked or deleted since the sign-in: an invalid grant (RFC
	// 6749 §5.2), refused before any token is stored. The ID token's
	// claims would refuse it only after, as access_denied, which is no
	// answer of the token endpoint. The read is the memo's, which the ID
	// token's claims read again.
	if u, err := s.getUser(ctx, a.UserID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, s.internal(ctx, "load the user of a code", err)
	} else if err != nil || account.CheckActive(u) != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user can no longer sign in")
	}
	var c storage.Client // read only for a sign-in with resources, from the memo
	if len(a.Resources) > 0 {
		c, err = s.getClient(ctx, a.ClientID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, oidc.ErrInvalidGrant().WithDescription("the client of this code no longer exists")
		}
		if err != nil {
			return nil, s.internal(ctx, "load the client of a code", err)
		}
	}
	resources, rerr := liveResources(c, a.Resources, resourcesFrom(ctx)) // resources.go
	if rerr != nil {
		return nil, refuseTarget(ctx, rerr)
	}
	// The sub and sid the app knows the person and the session by; the
	// client is the memo's.
	if c.ID == "" {
		if c, err = s.getClient(ctx, a.ClientID); err != nil {
			return nil, s.internal(ctx, "load the client of a token", err)
		}
	}
	subject, sid := s.subjects.Subject(c, a.UserID), account.ClientSID(c, a.SessionID)
	return &authRequest{a: a, codeHash: hash, issue: issue, resources: resources, subject: subject, sid: sid}, nil
}

// replayed handles a redeemed code presented again: when its client proves
// itself, the code is marked replayed and what it issued is revoked (an
// exchange still under way revokes its own once it has stored them:
// CreateCodeTokens).
func (s *opStorage) replayed(ctx context.Context, client codeClient, hash string, redeemed storage.AuthRequest) {
	if !client.provesReplay(redeemed) {
		s.log.WarnContext(ctx, "authorization code of a public client presented again without its PKCE verifier; revoked nothing",
			"client_id", redeemed.ClientID, "user_id", redeemed.UserID)
		return
	}
	issued, err := s.store.MarkCodeReplayed(ctx, hash, client.id)
	if errors.Is(err, storage.ErrNotFound) {
		return // forgotten a moment ago
	}
	if err != nil {
		s.log.ErrorContext(ctx, "mark a replayed authorization code", "client_id", redeemed.ClientID, "err", err)
		return
	}
	s.revokeIssued(ctx, issued)
	s.log.WarnContext(ctx, "authorization code presented again; revoked the tokens it issued",
		"client_id", redeemed.ClientID, "user_id", redeemed.UserID, "access_token_id", issued.AccessTokenID, "family_id", issued.FamilyID)
}

// revokeIssued revokes what one code issued.
func (s *opStorage) revokeIssued(ctx context.Context, issued storage.IssuedTokens) {
	if issued.FamilyID != "" {
		if err := s.store.RevokeFamily(ctx, issued.FamilyID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.ErrorContext(ctx, "revoke the refresh tokens of a replayed code", "family_id", issued.FamilyID, "err", err)
		}
	}
	if issued.AccessTokenID != "" {
		if err := s.store.DeleteAccessToken(ctx, issued.AccessTokenID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			s.log.ErrorContext(ctx, "revoke the access token of a replayed code", "access_token_id", issued.AccessTokenID, "err", err)
		}
	}
}

// createCodeTokens stores the tokens of a code exchange. If the code was
// replayed while the exchange ran, the store has deleted them again and the
// exchange fails like the replay.
func (s *opStorage) createCodeTokens(ctx context.Context, r *authRequest, access storage.AccessToken, refresh *storage.RefreshToken) error {
	// The app is recorded on the browser session in the tokens' commit, so
	// signing out of the session reaches it (front- and back-channel
	// logout).
	err := s.store.CreateCodeTokens(ctx, r.codeHash, access, refresh, r.a.SessionID)
	if errors.Is(err, storage.ErrTokenReused) {
		s.log.WarnContext(ctx, "authorization code presented again during its exchange; revoked the tokens it issued",
			"client_id", r.a.ClientID, "user_id", r.a.UserID)
		return oidc.ErrInvalidGrant().WithDescription("invalid, expired or already used code")
	}
	if err != nil {
		return s.internal(ctx, "store the tokens of a code", err)
	}
	return nil
}

func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	// The code lives only briefly: the request's life is shortened to the code's.
	err := s.store.IssueCode(ctx, id, account.HashSecret(code), s.now().Add(s.inForce().Code))
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) {
		// One request, one code: a replayed callback URL gets nothing.
		return oidc.ErrInvalidRequest().WithDescription("authorization request not found, expired or already answered")
	}
	if err != nil {
		return s.internal(ctx, "issue code", err)
	}
	return nil
}

func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.store.DeleteAuthRequest(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return s.internal(ctx, "delete auth request", err)
	}
	return nil
}

// accessFor builds the access-token record for any kind of token request,
// living as long as its app's access tokens do.
func (s *opStorage) accessFor(ctx context.Context, req op.TokenRequest, familyID string) storage.AccessToken {
	now := s.now()
	t := storage.AccessToken{
		ID:        account.NewOrderedIDAt(now), // a stateless token's issue time (accesstokens.go)
		Subject:   req.GetSubject(),
		Scopes:    req.GetScopes(),
		Audience:  req.GetAudience(),
		FamilyID:  familyID,
		CreatedAt: now,
	}
	switch r := req.(type) {
	case *authRequest:
		t.ClientID, t.UserID = r.a.ClientID, r.a.UserID
		t.UserinfoClaims = r.a.UserinfoClaims
		if r.codeHash != "" {
			t.ID = r.issue.AccessTokenID
		}
	case *refreshRequest:
		t.ClientID, t.UserID = r.rt.ClientID, r.rt.UserID
		t.UserinfoClaims = r.rt.UserinfoClaims
	case *machineRequest:
		t.ClientID = r.clientID
	case *deviceRequest:
		t.ClientID, t.UserID = r.a.ClientID, r.a.UserID
	}
	t.ExpiresAt = now.Add(s.lifetimes(ctx, t.ClientID).Access)
	t.DPoPJKT = dpopBinding(ctx)     // dpop.go
	s.resourceAudience(ctx, req, &t) // resources.go
	return t
}

// inForce are the server's lifetimes for this request.
func (s *opStorage) inForce() Lifetimes {
	if s.lifeNow != nil {
		return s.lifeNow()
	}
	return s.life
}

// lifetimes are the lifetimes of what client id is issued: its own where
// an admin set them, the server's otherwise. The client was read already
// in this request (the memo), to authenticate it or for its grant; if it
// is gone meanwhile, the server's apply, and its tokens fail at their
// next use, which looks the client up.
func (s *opStorage) lifetimes(ctx context.Context, id string) Lifetimes {
	life := s.inForce()
	if c, err := s.getClient(ctx, id); err == nil {
		life.Access = cmp.Or(c.AccessTokenLifetime, life.Access)
		life.ID = cmp.Or(c.IDTokenLifetime, life.ID)
		life.Refresh = cmp.Or(c.RefreshTokenLifetime, life.Refresh)
	}
	return life
}

// opClient adapts c for zitadel, with its ID-token lifetime.
func (s *opStorage) opClient(c storage.Client) *client {
	return &client{c: c, loginURL: s.loginURL, idLifetime: cmp.Or(c.IDTokenLifetime, s.inForce().ID)}
}

func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	if err := s.spendDPoPProof(ctx); err != nil { // dpop.go
		return "", time.Time{}, err
	}
	t := s.accessFor(ctx, req, "")
	if s.issuesStateless(ctx, req) { // accesstokens.go
		return statelessPrefix + t.ID, t.ExpiresAt, nil
	}
	if r, ok := req.(*authRequest); ok && r.codeHash != "" {
		if err := s.createCodeTokens(ctx, r, t, nil); err != nil {
			return "", time.Time{}, err
		}
		return t.ID, t.ExpiresAt, nil
	}
	if err := s.store.CreateTokens(ctx, t, nil); err != nil {
		return "", time.Time{}, s.internal(ctx, "store access token", err)
	}
	return t.ID, t.ExpiresAt, nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if err := s.spendDPoPProof(ctx); err != nil { // dpop.go
		return "", "", time.Time{}, err
	}
	if r, ok := req.(*refreshRequest); ok && r.retry {
		return s.reissueRefresh(ctx, r, current)
	}
	now, life := s.now(), s.inForce()
	secret, key := newRefreshToken()
	next := storage.RefreshToken{
		Hash:      key,
		ID:        account.NewOrderedID(),
		Scopes:    req.GetScopes(),
		Audience:  req.GetAudience(),
		CreatedAt: now,
	}
	switch r := req.(type) {
	case *authRequest:
		next.FamilyID = account.NewOrderedID()
		if r.codeHash != "" {
			next.FamilyID = r.issue.FamilyID
		}
		next.ClientID, next.UserID = r.a.ClientID, r.a.UserID
		next.AMR, next.AuthTime = r.a.AMR, r.a.AuthTime
		next.SID = sidOf(r)
		next.IDTokenClaims, next.UserinfoClaims, next.ACR = r.a.IDTokenClaims, r.a.UserinfoClaims, r.GetACR()
		next.ExpiresAt = now.Add(s.lifetimes(ctx, r.a.ClientID).Refresh)
		next.Resources = r.a.Resources // all granted, whatever this request narrowed
	case *deviceRequest:
		// A device's tokens belong to no browser session: no sid.
		next.FamilyID = account.NewOrderedID()
		next.ClientID, next.UserID = r.a.ClientID, r.a.UserID
		next.AMR, next.AuthTime, next.ACR = r.a.AMR, r.a.AuthTime, r.GetACR()
		next.ExpiresAt = now.Add(s.lifetimes(ctx, r.a.ClientID).Refresh)
		next.Resources = r.a.Resources // all granted, whatever this poll narrowed
	case *refreshRequest:
		next.FamilyID = r.rt.FamilyID
		next.ClientID, next.UserID = r.rt.ClientID, r.rt.UserID
		next.AMR, next.AuthTime = r.rt.AMR, r.rt.AuthTime
		next.SID = r.rt.SID
		next.IDTokenClaims, next.UserinfoClaims, next.ACR = r.rt.IDTokenClaims, r.rt.UserinfoClaims, r.rt.ACR
		// The family keeps its original scopes even when this request narrowed them,
		// and its resources.
		next.Scopes = r.rt.Scopes
		next.Resources = r.rt.Resources
		next.ExpiresAt = r.rt.ExpiresAt
		if life.RefreshReuseGrace > 0 {
			next.SealedValue = s.tokens.sealRefresh(secret, key)
			next.GraceUntil = now.Add(life.RefreshReuseGrace)
		}
	default:
		return "", "", time.Time{}, oidc.ErrInvalidRequest().WithDescription("refresh tokens are not issued for this grant")
	}
	next.DPoPJKT = s.refreshBinding(ctx, req, next.ClientID) // dpop.go
	next.IdleExpiresAt = now.Add(life.RefreshIdle)
	if next.IdleExpiresAt.After(next.ExpiresAt) {
		next.IdleExpiresAt = next.ExpiresAt
	}
	access := s.accessFor(ctx, req, next.FamilyID)
	if current == "" {
		if r, ok := req.(*authRequest); ok && r.codeHash != "" {
			if err := s.createCodeTokens(ctx, r, access, &next); err != nil {
				return "", "", time.Time{}, err
			}
			return access.ID, secret, access.ExpiresAt, nil
		}
		if err := s.store.CreateTokens(ctx, access, &next); err != nil {
			return "", "", time.Time{}, s.internal(ctx, "store tokens", err)
		}
		return access.ID, secret, access.ExpiresAt, nil
	}
	err := s.store.RotateRefreshToken(ctx, refreshKey(current), next, access)
	if errors.Is(err, storage.ErrNotFound) {
		// Another request rotated this token a moment ago. Within the
		// grace that is a retry: look again, and hand out its successor.
		if r, ok := req.(*refreshRequest); ok && life.RefreshReuseGrace > 0 {
			if rt, gerr := s.store.GetRefreshToken(ctx, refreshKey(current)); gerr == nil && rt.Hash != refreshKey(current) {
				r.rt, r.retry = rt, true
				return s.reissueRefresh(ctx, r, current)
			}
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	if err != nil {
		return "", "", time.Time{}, s.internal(ctx, "rotate refresh token", err)
	}
	return access.ID, secret, access.ExpiresAt, nil
}

// reissueRefresh answers a retry of the refresh token current within the
// reuse grace: a fresh access token in the family, and the same successor
// refresh token (r.rt) the first use got, opened from its sealed copy. The
// store checks again, in the transaction that stores the access token,
// that current is still a retry: the successor may have been used since it
// was read, and then this is reuse.
func (s *opStorage) reissueRefresh(ctx context.Context, r *refreshRequest, current string) (string, string, time.Time, error) {
	value, err := s.tokens.openRefresh(r.rt.SealedValue, r.rt.Hash)
	if err != nil {
		// Sealed under another key (secret.key was replaced since), or
		// damaged: the retry cannot be answered, but the successor stands
		// for whoever got it first.
		s.log.WarnContext(ctx, "refresh retry: the kept successor cannot be opened; refused the retry", "client_id", r.rt.ClientID, "family_id", r.rt.FamilyID, "err", err)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	access := s.accessFor(ctx, r, r.rt.FamilyID)
	live, err := s.store.RetryRefreshToken(ctx, refreshKey(current), access)
	switch {
	case errors.Is(err, storage.ErrTokenReused), errors.Is(err, storage.ErrNotFound):
		// Its successor was used meanwhile (the family is revoked), or
		// the family was revoked a moment ago.
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	case err != nil:
		return "", "", time.Time{}, s.internal(ctx, "store access token of a refresh retry", err)
	case live.Hash != r.rt.Hash:
		// Cannot happen: a rotated link has one successor.
		return "", "", time.Time{}, s.internal(ctx, "refresh retry", fmt.Errorf("successor %s read, %s at the retry", r.rt.ID, live.ID))
	}
	return access.ID, value, access.ExpiresAt, nil
}

// A refresh token is a time prefix (refreshPrefixLen characters of an
// account.NewOrderedID) followed by a 256-bit secret, and is stored under
// that prefix plus the SHA-256 of the whole token. The prefix makes the keys
// of a token family, and of all tokens, grow with time, so a rotation writes
// next to the previous ones instead of on random B+tree pages: with 16
// clients refreshing at once a commit wrote about half as many pages
// (scripts/bench.sh). Only the hash is secret-bearing; the prefix tells the
// issue time, which the ID token says anyway.
const refreshPrefixLen = 10

// newRefreshToken returns a new refresh token and the key it is stored under.
func newRefreshToken() (token, key string) {
	token = account.NewOrderedID()[:refreshPrefixLen] + account.NewSecret()
	return token, refreshKey(token)
}

// refreshKey is the storage key of a presented refresh token. Tokens issued
// before the time prefix (a bare account.NewSecret) are stored under their
// hash. A token of any other shape gets a key that matches nothing.
func refreshKey(token string) string {
	if len(token) == account.SecretLen {
		return account.HashSecret(token)
	}
	return token[:min(len(token), refreshPrefixLen)] + account.HashSecret(token)
}

// refreshShaped tells whether a presented token has the length of one of
// our refresh tokens, with or without the time prefix. Nothing else Keyport
// issues does.
func refreshShaped(token string) bool {
	return len(token) == refreshPrefixLen+account.SecretLen || len(token) == account.SecretLen
}

func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	rt, err := s.store.GetRefreshToken(ctx, refreshKey(token))
	switch {
	case errors.Is(err, storage.ErrTokenReused):
		if s.observer != nil {
			s.observer.RefreshTokenReused()
		}
		s.log.WarnContext(ctx, "refresh token reused; revoked its family", "err", err)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	case errors.Is(err, storage.ErrNotFound):
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired refresh token")
	case err != nil:
		return nil, s.internal(ctx, "load refresh token", err)
	}
	if rt.DPoPJKT != "" && !provesKey(ctx, rt.DPoPJKT) {
		// RFC 9449 §5: a public app's refresh token is bound to its key.
		return nil, oidc.ErrInvalidGrant().WithDescription("the refresh token is bound to a DPoP key: the request must carry a proof of that key")
	}
	u, err := s.activeUser(ctx, rt.UserID)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the user can no longer sign in").WithParent(err)
	}
	if err := s.checkRefreshNetwork(ctx, u, rt); err != nil {
		return nil, err
	}
	c, err := s.getClient(ctx, rt.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the client of this refresh token no longer exists")
	}
	if err != nil {
		return nil, s.internal(ctx, "load the client of a refresh token", err)
	}
	// The app's rules apply on every refresh as at sign-in: a user taken
	// out of its groups can no longer refresh, and scopes an admin took
	// from the app are no longer issued. The family itself stays as it
	// is, so nothing is revoked that a correction could not give back.
	if err := account.MayUseClient(u, c); err != nil {
		s.log.InfoContext(ctx, "refresh refused: the user is not in the app's allowed groups", "client_id", c.ID, "user_id", u.ID)
		return nil, oidc.ErrInvalidGrant().WithDescription("the user is no longer allowed to use this app")
	}
	resources, rerr := liveResources(c, rt.Resources, resourcesFrom(ctx)) // resources.go
	if rerr != nil {
		return nil, refuseTarget(ctx, rerr)
	}
	// A retry within the reuse grace comes back as the successor.
	retry := rt.Hash != refreshKey(token)
	return &refreshRequest{rt: rt, scopes: allowedScopes(c, rt.Scopes), retry: retry, resources: resources, subject: s.subjects.Subject(c, rt.UserID)}, nil
}

// allowedScopes drops from scopes those app c may not receive
// (storage.Client.AllowedScopes; empty allows all). RFC 6749 §3.3 lets
// the server ignore part of the requested scope and say so by the scope it
// issues, which the token response carries; Keycloak ignores scopes not
// assigned to a client the same way. openid is never dropped: it asks for
// OpenID Connect itself, not for access to anything.
func allowedScopes(c storage.Client, scopes []string) []string {
	kept := slices.Clone(scopes)
	if len(c.AllowedScopes) == 0 {
		return kept
	}
	return slices.DeleteFunc(kept, func(sc string) bool {
		return sc != oidc.ScopeOpenID && !slices.Contains(c.AllowedScopes, sc)
	})
}

// checkRefreshNetwork applies the user's IP allowlist to a refresh, from
// the resolved client address, through the account service's rule
// (Options.CheckRefresh): only public clients' refreshes are checked, since
// a confidential client refreshes from the app's server, whose address
// says nothing about where the person is. A refused refresh revokes
// nothing.
func (s *opStorage) checkRefreshNetwork(ctx context.Context, u storage.User, rt storage.RefreshToken) error {
	if s.checkRefresh == nil {
		return nil
	}
	err := s.checkRefresh(ctx, u, rt.ClientID, clientip.FromContext(ctx))
	if err == nil {
		return nil
	}
	switch account.ErrorCode(err) {
	case account.NotFound:
		return oidc.ErrInvalidGrant().WithDescription("the client of this refresh token no longer exists")
	case account.Internal:
		return s.internal(ctx, "check refresh network", err)
	}
	return oidc.ErrInvalidGrant().WithDescription("the user may not use this app from this network")
}

// TerminateSession revokes the tokens of the person an end_session
// request's id_token_hint names (subject, as app clientID knows them) at
// that app.
func (s *opStorage) TerminateSession(ctx context.Context, subject, clientID string) error {
	if subject == "" {
		return nil
	}
	userID, err := s.userOf(ctx, clientID, subject)
	if err != nil {
		return err
	}
	if userID == "" {
		return nil // no one Keyport gave this sub to: nothing to revoke
	}
	if _, err := s.store.RevokeUserClient(ctx, userID, clientID); err != nil {
		return s.internal(ctx, "revoke tokens at logout", err)
	}
	return nil
}

func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	rt, err := s.store.GetRefreshToken(ctx, refreshKey(token))
	if err != nil {
		// Reused tokens have just had their family revoked; nothing more to do.
		return "", "", op.ErrInvalidRefreshToken
	}
	return rt.UserID, refreshIDPrefix + rt.ID, nil
}

// refreshIDPrefix tells RevokeToken that it was handed a refresh token's ID.
const refreshIDPrefix = "rt:"

func (s *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if id, ok := strings.CutPrefix(tokenOrID, refreshIDPrefix); ok {
		rt, err := s.store.GetRefreshTokenByID(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return s.internal(ctx, "load refresh token", err)
		}
		if rt.ClientID != clientID {
			return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
		}
		if err := s.store.RevokeFamily(ctx, rt.FamilyID); err != nil {
			return s.internal(ctx, "revoke refresh token", err)
		}
		return nil
	}
	if isStateless(tokenOrID) {
		return s.revokeStateless(ctx, tokenOrID, clientID)
	}
	t, err := s.store.GetAccessToken(ctx, tokenOrID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // RFC 7009 §2.2: an unknown token is not an error
	}
	if err != nil {
		return s.internal(ctx, "load access token", err)
	}
	if t.ClientID != clientID {
		return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
	}
	if err := s.store.DeleteAccessToken(ctx, t.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return s.internal(ctx, "revoke access token", err)
	}
	return nil
}

// SigningKey is the key of the algorithm the app of this token request
// asked for, the default one when it asked for none (signing.go).
func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return s.keys.signer(ctx, signingNoteFrom(ctx).algorithm())
}

// SignatureAlgorithms are what discovery advertises as
// id_token_signing_alg_values_supported: the algorithms of the published
// keys, and RS256 in any case. OpenID Connect Discovery 1.0 §3 says "The
// algorithm RS256 MUST be included", and it is supported whatever [keys]
// algorithm says: an app that asks for it (id_token_signed_response_alg,
// the registration spec's default) gets a key of its own.
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	st, err := s.keys.current()
	if err != nil {
		return nil, err
	}
	if slices.Contains(st.algs, jose.RS256) {
		return st.algs, nil
	}
	return append(slices.Clip(st.algs), jose.RS256), nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	st, err := s.keys.current()
	if err != nil {
		return nil, err
	}
	return st.public, nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.getClient(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return nil, s.internal(ctx, "load client", err)
	}
	signingNoteFrom(ctx).set(c)
	return s.opClient(c), nil
}

func (s *opStorage) authenticateClient(ctx context.Context, id, secret string) (storage.Client, error) {
	c, err := s.getClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, s.internal(ctx, "load client", err)
	}
	if a, ok := assertedClientFrom(ctx); ok && a.ID == id && err == nil {
		// Authenticated by its signed assertion ahead of zitadel
		// (clientassertion.go), which hands on the client_id alone.
		return c, nil
	}
	// Throttled, counted and logged in clientauth.go.
	rec := clientRecord{found: err == nil, public: c.Public, assertionOnly: account.UsesAssertion(c),
		secretHash: c.SecretHash, previousHash: c.PreviousSecretHash, previousUntil: c.PreviousSecretUntil}
	if err := s.checkClientSecret(ctx, id, secret, rec); err != nil {
		return storage.Client{}, err
	}
	return c, nil
}

func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	if done, ok := codeClientFrom(ctx); ok && done.id == id {
		// A code exchange whose client the middleware authenticated
		// (authenticateCodeClient), from the same credentials: one request
		// is one check, and one attempt for the throttle.
		return nil
	}
	_, err := s.authenticateClient(ctx, id, secret)
	return err
}

func (s *opStorage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.authenticateClient(ctx, id, secret)
	if err != nil {
		return nil, err
	}
	signingNoteFrom(ctx).set(c)
	return s.opClient(c), nil
}

func (s *opStorage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	if err := checkScopeTokens(scopes); err != nil {
		return nil, err
	}
	c, err := s.getClient(ctx, clientID)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	// A machine token has no user, so the user-claim scopes mean nothing
	// here. The management API's scopes are an admin's grant, never the
	// app's own choice: only an app whose allowed scopes name one gets it
	// (liveScopes, the rule every reader of its tokens applies too).
	kept := slices.DeleteFunc(liveScopes(c, scopes), func(sc string) bool {
		switch sc {
		case oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeAddress, oidc.ScopeOfflineAccess, scopeGroups:
			return true
		}
		return false
	})
	resources, rerr := grantResources(c, resourcesFrom(ctx)) // resources.go
	if rerr != nil {
		return nil, rerr
	}
	return &machineRequest{clientID: clientID, scopes: kept, resources: resources}, nil
}

func (s *opStorage) activeUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.getUser(ctx, id)
	if err != nil {
		return storage.User{}, err
	}
	return u, account.CheckActive(u)
}

// SetUserinfoFromScopes fills an ID token's claims; zitadel hands it the
// token request's sub, which for a pairwise app is read back here.
func (s *opStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, subject, clientID string, scopes []string) error {
	userID, err := s.userOf(ctx, clientID, subject)
	if err != nil {
		return err
	}
	u, err := s.activeUser(ctx, userID)
	if err != nil {
		return oidc.ErrAccessDenied().WithDescription("the user can no longer sign in").WithParent(err)
	}
	s.setClaims(info, u, subject, scopes)
	return nil
}

// SetUserinfoFromRequest adds what an ID token says about the request
// rather than the user: sid, the browser session it was issued in (for
// front- and back-channel logout), and the individual claims the claims
// parameter asked for. A refreshed ID token names the session and the acr
// of the sign-in that started its family.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if sid := sidOf(req); sid != "" {
		info.AppendClaims("sid", sid)
	}
	if r, ok := req.(*refreshRequest); ok && r.rt.ACR != "" {
		// zitadel puts acr only in the ID token of a code; a refreshed
		// one repeats the sign-in's, as its auth_time and amr do.
		info.AppendClaims("acr", r.rt.ACR)
	}
	if names := idTokenClaimsOf(req); len(names) > 0 {
		// The individual claims the sign-in's claims parameter asked the
		// ID token for (claimsparam.go).
		u, err := s.activeUser(ctx, userIDOf(req))
		if err != nil {
			return oidc.ErrAccessDenied().WithDescription("the user can no longer sign in").WithParent(err)
		}
		for k, v := range s.pairwiseClaims(u, req.GetSubject(), account.NamedClaims(u, names, s.issuer)) {
			info.AppendClaims(k, v)
		}
	}
	s.appendCustomClaims(ctx, info, req, scopes) // customclaims.go
	return nil
}

// sidOf is the sid of the session a token request belongs to, or "".
func sidOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case *authRequest:
		return r.sid
	case *refreshRequest:
		return r.rt.SID
	}
	return ""
}

// errInvalidToken is how userinfo and introspection see a token that is
// dead (liveAccessToken), or one their own rules refuse.
var errInvalidToken = oidc.ErrInvalidRequest().WithDescription("invalid_token")

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, u, _, err := s.liveAccessToken(ctx, tokenID, subject) // accesstokens.go
	if errors.Is(err, errNotOurToken) {
		return errInvalidToken
	}
	if err != nil {
		return s.internal(ctx, "userinfo: read the access token", err) // answered as invalid_token
	}
	if t.UserID == "" {
		return errInvalidToken // an app's own token: no person to describe
	}
	if !s.readsUserinfo(ctx, t) { // resources.go
		return errInvalidToken
	}
	if err := s.checkDPoPBinding(ctx, t); err != nil { // dpop.go
		return err
	}
	signingNoteFrom(ctx).setUserinfoClient(t.ClientID) // signed userinfo (signing.go)
	s.setClaims(info, u, t.Subject, t.Scopes)
	for k, v := range s.pairwiseClaims(u, t.Subject, account.NamedClaims(u, t.UserinfoClaims, s.issuer)) {
		info.AppendClaims(k, v)
	}
	for k, v := range s.customClaimsOf(ctx, t.ClientID, u, t.Subject, t.Scopes, t.UserinfoClaims, account.ClaimInUserinfo) { // customclaims.go
		info.AppendClaims(k, v)
	}
	return nil
}

func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	t, u, _, err := s.liveAccessToken(ctx, tokenID, subject) // accesstokens.go
	if errors.Is(err, errNotOurToken) {
		return errInvalidToken
	}
	if err != nil {
		return s.internal(ctx, "introspection: read the access token", err) // answered as active=false
	}
	if t.UserID != "" {
		resp.Username = introspectedUsername(u, t.Subject, t.Scopes)
	}
	// Metadata only: any authenticated client may introspect, so profile
	// claims stay behind userinfo, where the token's own scopes apply.
	resp.Issuer = s.issuer // RFC 7662 §2.2: for a resource server that trusts several
	resp.Subject = t.Subject
	resp.ClientID = t.ClientID
	resp.Scope = t.Scopes
	resp.Audience = t.Audience
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.JWTID = t.ID
	resp.Actor = actorClaims(t.Actors) // token exchange (tokenexchange.go)
	// What a JWT access token of the app carries (customclaims.go).
	if custom := s.customClaimsOf(ctx, t.ClientID, u, t.Subject, t.Scopes, nil, account.ClaimInAccessToken); t.UserID != "" && custom != nil {
		resp.Claims = custom
	}
	if t.DPoPJKT != "" {
		// RFC 9449 §6.2: the key the token is bound to.
		resp.TokenType = dpopTokenType
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		resp.Claims["cnf"] = map[string]any{"jkt": t.DPoPJKT}
	}
	return nil
}

// introspectedUsername is the username introspection reports for a token
// of u with sub subject and scopes. A token with a pairwise sub (one that
// is not the user ID) reports it only with the profile scope, which
// releases it as preferred_username anyway (Keycloak's introspection
// reads it from there too): a name every app knows the person by would
// undo the pairwise sub (OpenID Connect Core 1.0 §8.1).
func introspectedUsername(u storage.User, subject string, scopes []string) string {
	if subject != u.ID && !slices.Contains(scopes, oidc.ScopeProfile) {
		return ""
	}
	return u.Username
}

func (s *opStorage) GetPrivateClaimsFromScopes(ctx context.Context, _, _ string, _ []string) (map[string]any, error) {
	return dpopClaimsFor(ctx), nil // cnf of a DPoP-bound JWT access token (dpop.go)
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the JWT profile grant is not supported")
}

// setClaims fills the claims a set of scopes releases, from the profile
// policy table (account.Claims). It is the only place user fields become
// claims; the table has no claim for the internal fields (blocked, last IP,
// last login, login count, password and second-factor data, app metadata).
func (s *opStorage) setClaims(info *oidc.UserInfo, u storage.User, subject string, scopes []string) {
	info.Subject = subject // as the app knows u (account.Subjects)
	for k, v := range s.pairwiseClaims(u, subject, account.Claims(u, scopes, s.issuer)) {
		info.AppendClaims(k, v)
	}
}

// pairwiseClaims gives an app that knows u by a pairwise sub its own
// picture URL in claims: the one of every other app has the user ID in its
// path (account.AvatarPath), which would undo the pairwise sub (OpenID
// Connect Core 1.0 §8.1). The URL follows the sub (a public one is the
// user ID), so it reads nothing and costs a public app nothing.
func (s *opStorage) pairwiseClaims(u storage.User, subject string, claims map[string]any) map[string]any {
	if subject == u.ID || len(claims) == 0 {
		return claims
	}
	base := strings.TrimSuffix(s.issuer, "/")
	shared := base + account.AvatarPath(u)
	for k, v := range claims {
		if v == shared {
			claims[k] = base + s.subjects.PairwiseAvatarPath(subject, u)
		}
	}
	return claims
}

// checkScopeTokens bounds what a client may ask for: at most 32 scopes of at
// most 128 characters each, from RFC 6749's scope-token alphabet.
func checkScopeTokens(scopes []string) *oidc.Error {
	if len(scopes) > 32 {
		return oidc.ErrInvalidScope().WithDescription("too many scopes")
	}
	for _, sc := range scopes {
		if len(sc) == 0 || len(sc) > 128 {
			return oidc.ErrInvalidScope().WithDescription("scope too long")
		}
		for i := 0; i < len(sc); i++ {
			if c := sc[i]; c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
				return oidc.ErrInvalidScope().WithDescription("scope contains a character RFC 6749 does not allow")
			}
		}
	}
	return nil
}

// userOf is the user ID behind sub as app clientID knows it, "" when
// Keyport gave no one that sub there.
func (s *opStorage) userOf(ctx context.Context, clientID, sub string) (string, error) {
	c, err := s.getClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return "", oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return "", s.internal(ctx, "load client", err)
	}
	userID, ok := s.subjects.UserOf(c, sub)
	if !ok {
		return "", nil
	}
	return userID, nil
}

// userIDOf is the user a token request is for, "" for an app's own.
func userIDOf(req op.TokenRequest) string {
	switch r := req.(type) {
	case *authRequest:
		return r.a.UserID
	case *refreshRequest:
		return r.rt.UserID
	case *deviceRequest:
		return r.a.UserID
	case exchangeRequest:
		return r.t.UserID
	}
	return ""
}
