package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Token exchange (RFC 8693) is served here rather than by zitadel's
// TokenExchangeStorage: zitadel's request cannot be given an audience
// other than the one requested (a resource alone would issue a token for
// nobody), carries nothing from the subject token's record to the token it
// stores (its remaining life, its actors), answers a bad subject token
// before Keyport's store is asked, and would issue refresh and ID tokens.
// The tokens themselves are made with zitadel's builders (op.CreateJWT,
// op.CreateBearerToken), so they are the same as every other grant's.
//
// Two kinds of subject token are taken:
//   - a user's access token issued by Keyport (opaque or JWT), for
//     delegation: the requesting app must hold it (issued to it or for it)
//     and may exchange it only for the audiences an admin listed for it
//     (storage.Client.TokenExchangeAudiences); the new token names the app
//     in act;
//   - an app password limited to the requesting app, sent as
//     "<username or email>:<app password>" (the app password has no colon;
//     the name is what comes before the last one), for apps that cannot
//     show a sign-in page: a short-lived access token for that app alone.
const (
	tokenTypeAccessToken = string(oidc.AccessTokenType)
	// tokenTypeJWT is RFC 8693 §3's type for any JWT. A JWT access token
	// of ours is one, and clients that label a subject token by its format
	// rather than its role send it (Spring Security's token-exchange
	// client does for every JWT it holds); it is taken as an access token
	// that must be a JWT.
	tokenTypeJWT = string(oidc.JWTTokenType)
	// TokenTypeAppPassword is Keyport's subject_token_type for an app
	// password.
	TokenTypeAppPassword = "urn:keyport:params:oauth:token-type:app-password"

	// maxAppPasswordTokenLife bounds the life of a token issued for an
	// app password; the app's own access-token lifetime applies when it is
	// shorter.
	maxAppPasswordTokenLife = time.Hour
	// maxActors bounds how many exchanges one token may pass through.
	maxActors = 5
	// maxTargets bounds the audience and resource values of one request.
	maxTargets = 8
)

// exchangeRequest is a token-exchange request Keyport decided to grant;
// the op.TokenRequest that op.CreateJWT builds the access token from.
type exchangeRequest struct {
	t storage.AccessToken
	// app is the requesting app, whose token it is: its custom claims
	// (customclaims.go) go in the JWT without reading it again.
	app storage.Client
}

var _ op.TokenActorRequest = exchangeRequest{}

func (r exchangeRequest) GetSubject() string    { return r.t.Subject }
func (r exchangeRequest) GetAudience() []string { return r.t.Audience }
func (r exchangeRequest) GetScopes() []string   { return r.t.Scopes }
func (r exchangeRequest) GetActor() *oidc.ActorClaims {
	return actorClaims(r.t.Actors)
}

// actorClaims is the act claim (RFC 8693 §4.1) of a chain of actors, the
// latest first and outermost.
func actorClaims(actors []string) *oidc.ActorClaims {
	var act *oidc.ActorClaims
	for i := len(actors) - 1; i >= 0; i-- {
		act = &oidc.ActorClaims{Subject: actors[i], Actor: act}
	}
	return act
}

// A subject token that is invalid, or unacceptable by policy (another
// app's, a blocked user's, a wrong app password), is refused with
// invalid_request, which RFC 8693 §2.2.2 requires (not invalid_grant); a
// target Keyport will not issue a token for, with invalid_target.

// tokenExchangeError is an OAuth error of the token endpoint that
// zitadel has no constructor for (invalid_target, RFC 8707 §2).
func tokenExchangeError(code, format string, args ...any) *oidc.Error {
	return oauthError(code, fmt.Sprintf(format, args...))
}

// serveTokenExchange answers a token-exchange request.
func (p *Provider) serveTokenExchange(w http.ResponseWriter, r *http.Request) {
	rec := newRecorder()
	resp, err := p.exchangeToken(r)
	if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
		writeThrottled(w, refused)
		return
	}
	var limited *account.Error
	if errors.As(err, &limited) && limited.Code == account.RateLimited {
		secs := throttle.RetryAfterSeconds(limited.RetryAfter)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Cache-Control", "no-store")
		writeJSONError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many failed app-password checks; try again in "+strconv.Itoa(secs)+" seconds")
		return
	}
	if err != nil {
		op.RequestError(rec, r, err, nil)
	} else {
		httphelper.MarshalJSON(rec, resp)
	}
	p.finish(w, r, "/oauth/token", rec)
}

// exchangeToken authenticates the client and decides the request.
func (p *Provider) exchangeToken(r *http.Request) (*oidc.TokenExchangeResponse, error) {
	ctx := r.Context()
	f := r.PostForm
	subjectToken, subjectType := f.Get("subject_token"), f.Get("subject_token_type")
	if subjectToken == "" || subjectType == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token and subject_token_type are required")
	}
	cc, authErr := p.authenticateCodeClient(r)
	if authErr != nil {
		return nil, authErr
	}
	s := p.storage
	requester, err := s.getClient(ctx, cc.id)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if requester.Public || !slices.Contains(requester.GrantTypes, account.GrantTokenExchange) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client may not use token exchange")
	}
	if rt := f.Get("requested_token_type"); rt != "" && rt != tokenTypeAccessToken {
		return nil, oidc.ErrInvalidRequest().WithDescription("requested_token_type must be %s", tokenTypeAccessToken)
	}
	if f.Get("actor_token") != "" || f.Get("actor_token_type") != "" {
		// The requesting client is the actor, and it authenticated.
		return nil, oidc.ErrInvalidRequest().WithDescription("actor_token is not supported: the authenticated client is the actor")
	}
	scopes := strings.Fields(f.Get("scope"))
	if err := checkScopeTokens(scopes); err != nil {
		return nil, err
	}
	scopes = distinct(scopes) // a scope asked for twice is in the token once
	audiences, resources := f["audience"], f["resource"]
	if len(audiences)+len(resources) > maxTargets {
		return nil, oidc.ErrInvalidRequest().WithDescription("at most %d audience and resource values", maxTargets)
	}
	if err := resourceProblem(resources); err != nil {
		// As at every grant (resources.go); the middleware refused it
		// already.
		return nil, err
	}
	var (
		t         storage.AccessToken
		format    *storage.Client
		subjectID string // of the subject access token, for delegation
	)
	switch subjectType {
	case tokenTypeAccessToken, tokenTypeJWT:
		if subjectType == tokenTypeJWT && strings.Count(subjectToken, ".") != 2 {
			return nil, oidc.ErrInvalidRequest().WithDescription("subject_token is not a JWT")
		}
		t, format, subjectID, err = p.delegate(ctx, requester, subjectToken, scopes, audiences, resources)
	case TokenTypeAppPassword:
		t, format, err = p.appPasswordToken(r, requester, subjectToken, scopes, audiences, resources)
	default:
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type must be %s, %s or %s", tokenTypeAccessToken, tokenTypeJWT, TokenTypeAppPassword)
	}
	if err != nil {
		return nil, err
	}
	t.DPoPJKT = dpopBinding(ctx) // dpop.go
	if err := s.spendDPoPProof(ctx); err != nil {
		return nil, err
	}
	if err := s.store.CreateTokens(ctx, t, nil); err != nil {
		return nil, s.internal(ctx, "store an exchanged access token", err)
	}
	if subjectID != "" {
		// The token is in the subject token's family, so revoking that
		// family revokes it too; one revoked between the check and the
		// store above would have missed it.
		if _, gone := s.store.GetAccessToken(ctx, subjectID); gone != nil {
			if err := s.store.DeleteAccessToken(ctx, t.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return nil, s.internal(ctx, "drop the exchanged token of a revoked subject token", err)
			}
			if !errors.Is(gone, storage.ErrNotFound) {
				return nil, s.internal(ctx, "load the subject token of an exchange", gone)
			}
			return nil, oidc.ErrInvalidRequest().WithDescription("subject_token is invalid, expired or revoked")
		}
	}
	var token string
	if format.AccessTokenJWT {
		// Signed with the key of the algorithm of the app whose token it
		// is in format (signing.go): the audience that verifies it.
		signingNoteFrom(ctx).set(*format)
		token, err = op.CreateJWT(ctx, p.opts.Issuer, exchangeRequest{t: t, app: requester}, t.ExpiresAt, t.ID, s.opClient(requester), s)
	} else {
		token, err = op.CreateBearerToken(t.ID, t.Subject, p.op.Crypto())
	}
	if err != nil {
		return nil, s.internal(ctx, "make an exchanged access token", err)
	}
	s.log.InfoContext(ctx, "token exchanged", "client_id", requester.ID, "user_id", t.UserID, "subject_token_type", subjectType,
		"audience", strings.Join(t.Audience, " "), "access_token_id", t.ID)
	return &oidc.TokenExchangeResponse{
		AccessToken:     token,
		IssuedTokenType: oidc.AccessTokenType,
		TokenType:       oidc.BearerToken,
		ExpiresIn:       uint64(max(0, t.ExpiresAt.Sub(s.now()).Round(time.Second).Seconds())),
		Scopes:          t.Scopes,
	}, nil
}

// delegate decides an exchange of a user's access token held by requester
// for the audiences and resources asked for. It returns the token to
// store, the app whose access-token format it takes (the target app when
// there is one app among the audiences, else the requester) and the
// subject token's ID. The new token joins the subject token's refresh
// family: what revokes the sign-in it came from (RFC 7009 revocation, a
// refresh token or code used twice, the user revoking the app) revokes it
// too, whichever app holds it.
func (p *Provider) delegate(ctx context.Context, requester storage.Client, subjectToken string, scopes, audiences, resources []string) (storage.AccessToken, *storage.Client, string, error) {
	s := p.storage
	invalid := oidc.ErrInvalidRequest().WithDescription("subject_token is invalid, expired or revoked")
	if len(subjectToken) > 8192 {
		return storage.AccessToken{}, nil, "", invalid
	}
	id, subject, err := p.accessTokenID(ctx, subjectToken)
	if err != nil {
		return storage.AccessToken{}, nil, "", invalid
	}
	if isStateless(id) { // an app's own client_credentials token
		return storage.AccessToken{}, nil, "", oidc.ErrInvalidRequest().WithDescription("subject_token is not a user's token")
	}
	// Live as at every reader (liveAccessToken): its user active, its app
	// still the one it was issued to (a deleted or held app's tokens work
	// nowhere, so they are not passed on either), its app password live.
	sub, u, _, err := s.liveAccessToken(ctx, id, subject) // accesstokens.go
	if errors.Is(err, errNotOurToken) {
		return storage.AccessToken{}, nil, "", invalid
	}
	if err != nil {
		return storage.AccessToken{}, nil, "", s.internal(ctx, "read the subject token of an exchange", err)
	}
	if sub.UserID == "" {
		return storage.AccessToken{}, nil, "", oidc.ErrInvalidRequest().WithDescription("subject_token is not a user's token")
	}
	if err := subjectTokenBinding(ctx, sub); err != nil { // dpop.go
		return storage.AccessToken{}, nil, "", err
	}
	if sub.ClientID != requester.ID && !slices.Contains(sub.Audience, requester.ID) {
		return storage.AccessToken{}, nil, "", oidc.ErrInvalidRequest().WithDescription("subject_token was not issued to or for this client")
	}
	if len(sub.Actors) >= maxActors {
		return storage.AccessToken{}, nil, "", oidc.ErrInvalidRequest().WithDescription("subject_token has been exchanged too many times")
	}
	if err := p.checkExchangeNetwork(ctx, u, requester.ID); err != nil {
		return storage.AccessToken{}, nil, "", err
	}
	if len(audiences)+len(resources) == 0 {
		return storage.AccessToken{}, nil, "", oidc.ErrInvalidRequest().WithDescription("audience or resource is required")
	}
	// A value named twice is named once: the token's format (one target
	// app's) must not depend on a repeat.
	audiences, resources = distinct(audiences), distinct(resources)
	// Scopes are never widened: asking for one the subject token lacks is
	// refused (RFC 6749 §5.2 invalid_scope), and none asked for means the
	// subject token's. offline_access is dropped: no refresh token is
	// issued.
	if len(scopes) == 0 {
		scopes = slices.Clone(sub.Scopes)
	}
	for _, sc := range scopes {
		if !slices.Contains(sub.Scopes, sc) {
			return storage.AccessToken{}, nil, "", oidc.ErrInvalidScope().WithDescription("scope %q is not in the subject token", sc)
		}
	}
	scopes = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return sc == oidc.ScopeOfflineAccess })
	format := &requester
	var targetApps []storage.Client
	for _, a := range slices.Concat(audiences, resources) {
		if !slices.Contains(requester.TokenExchangeAudiences, a) {
			return storage.AccessToken{}, nil, "", tokenExchangeError("invalid_target", "this client may not exchange tokens for %q", truncate(a, 128))
		}
	}
	for _, a := range audiences {
		target, err := s.getClient(ctx, a)
		if errors.Is(err, storage.ErrNotFound) {
			if strings.Contains(a, "://") {
				continue // a resource URI given as an audience
			}
			return storage.AccessToken{}, nil, "", tokenExchangeError("invalid_target", "no app %q", truncate(a, 128))
		}
		if err != nil {
			return storage.AccessToken{}, nil, "", s.internal(ctx, "load the target of an exchange", err)
		}
		// The target's rules apply as at a sign-in to it: its allowed
		// groups, and the scopes it may receive.
		if account.MayUseClient(u, target) != nil {
			s.log.InfoContext(ctx, "token exchange refused: the user is not in the target app's allowed groups", "client_id", requester.ID, "target", target.ID, "user_id", u.ID)
			return storage.AccessToken{}, nil, "", tokenExchangeError("invalid_target", "the user may not use %q", target.ID)
		}
		scopes = allowedScopes(target, scopes)
		targetApps = append(targetApps, target)
	}
	if len(targetApps) == 1 && len(audiences)+len(resources) == 1 {
		format = &targetApps[0]
	}
	// Every app in the token's audience reads its sub. One that knows the
	// person by another sub (a pairwise app, OpenID Connect Core 1.0 §8,
	// beside the requester's or another sector's app) would learn a sub of
	// another sector, or the user ID, which its pairwise sub is there to
	// keep from it: such an app gets its token from an exchange of its own.
	newSubject := p.opts.Subjects.Subject(*format, sub.UserID)
	for _, target := range targetApps {
		if p.opts.Subjects.Subject(target, sub.UserID) != newSubject {
			return storage.AccessToken{}, nil, "", tokenExchangeError("invalid_target", "%q knows the person by another subject than the token's other audiences: exchange for it alone", target.ID)
		}
	}
	life, now := s.lifetimes(ctx, format.ID).Access, s.now()
	t := storage.AccessToken{
		ID:       account.NewOrderedID(),
		ClientID: requester.ID,
		UserID:   sub.UserID,
		// The sub the app the token is for knows the person by: the one
		// target app's, else the requester's (account.Subjects).
		Subject:   newSubject,
		Scopes:    scopes,
		Audience:  distinct(slices.Concat(audiences, resources)),
		CreatedAt: now,
		ExpiresAt: now.Add(life),
		Actors:    append([]string{requester.ID}, sub.Actors...),
		FamilyID:  sub.FamilyID,
		// A token exchanged from one issued for an app password ends
		// with that app password, as the subject token does: passing it
		// on must not outlive a revocation.
		CredentialID: sub.CredentialID,
	}
	if sub.ExpiresAt.Before(t.ExpiresAt) {
		t.ExpiresAt = sub.ExpiresAt // never outlives the token it replaces
	}
	return t, format, sub.ID, nil
}

// appPasswordToken decides an exchange of an app password limited to
// requester for a short-lived access token for requester itself.
func (p *Provider) appPasswordToken(r *http.Request, requester storage.Client, subjectToken string, scopes, audiences, resources []string) (storage.AccessToken, *storage.Client, error) {
	ctx, s := r.Context(), p.storage
	if p.opts.VerifyAppPassword == nil {
		return storage.AccessToken{}, nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type must be %s", tokenTypeAccessToken)
	}
	for _, a := range slices.Concat(audiences, resources) {
		if a != requester.ID {
			return storage.AccessToken{}, nil, tokenExchangeError("invalid_target", "an app password gives a token for the app it is limited to only")
		}
	}
	i := strings.LastIndexByte(subjectToken, ':')
	if i <= 0 || i == len(subjectToken)-1 {
		return storage.AccessToken{}, nil, oidc.ErrInvalidRequest().WithDescription("an app password subject_token is <username>:<app password>")
	}
	u, credentialID, err := p.opts.VerifyAppPassword(ctx, subjectToken[:i], subjectToken[i+1:], clientip.FromContext(ctx), r.UserAgent(), requester)
	if err != nil {
		switch account.ErrorCode(err) {
		case account.RateLimited:
			return storage.AccessToken{}, nil, err
		case account.Internal:
			return storage.AccessToken{}, nil, s.internal(ctx, "check an app password", err)
		}
		if errors.Is(err, account.ErrNotInAppGroups) {
			// Right credentials of a person outside the app's allowed
			// groups, refused (and recorded) by VerifyAppPassword.
			return storage.AccessToken{}, nil, oidc.ErrInvalidRequest().WithDescription("the user may not use this app")
		}
		return storage.AccessToken{}, nil, oidc.ErrInvalidRequest().WithDescription("invalid username or app password, or the app password may not be used here")
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID}
	}
	scopes = slices.DeleteFunc(requestableScopes(requester, scopes), func(sc string) bool { // as at /authorize (customclaims.go)
		// A person's token never carries the management API's scopes,
		// and no refresh token is issued.
		return sc == oidc.ScopeOfflineAccess || account.IsManagementScope(sc)
	})
	now := s.now()
	life := min(s.lifetimes(ctx, requester.ID).Access, maxAppPasswordTokenLife)
	t := storage.AccessToken{
		ID:          account.NewOrderedID(),
		ClientID:    requester.ID,
		UserID:      u.ID,
		Subject:     p.opts.Subjects.Subject(requester, u.ID),
		Scopes:      scopes,
		Audience:    []string{requester.ID},
		CreatedAt:   now,
		ExpiresAt:   now.Add(life),
		AppPassword: true,
		// Revoking the app password (or its expiry, or the user's
		// deletion) ends the token at once: every reader checks it
		// (credentialLive).
		CredentialID: credentialID,
	}
	return t, &requester, nil
}

// checkExchangeNetwork applies the user's IP allowlist as a refresh by
// the requesting client would (Options.CheckRefresh).
func (p *Provider) checkExchangeNetwork(ctx context.Context, u storage.User, clientID string) error {
	s := p.storage
	if s.checkRefresh == nil {
		return nil
	}
	err := s.checkRefresh(ctx, u, clientID, clientip.FromContext(ctx))
	switch {
	case err == nil:
		return nil
	case account.ErrorCode(err) == account.Internal:
		return s.internal(ctx, "check exchange network", err)
	}
	return oidc.ErrInvalidRequest().WithDescription("the user may not use this app from this network")
}

// distinct is list without repeats, in its order.
func distinct(list []string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
