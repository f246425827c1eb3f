package provider

// Back-Channel Logout 1.0: a logout token tells an app's server that a
// person's session (sid) or every session of the person (sub alone) ended
// at Keyport. Building and signing one is here; sending it goes through
// the durable outbox, whose worker calls DeliverLogoutToken (or
// BackChannelLogout, which does both) for every account.BackChannelLogout
// the sign-out produced.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
)

// LogoutTokenLifetime is how long a logout token is accepted: long enough
// for a delivery and the receiver's clock, short enough that a token
// captured in transit is soon worth nothing (the specification asks for
// "a few minutes" at most).
const LogoutTokenLifetime = 2 * time.Minute

// backChannelLogoutEvent is the event member a logout token must carry
// (Back-Channel Logout 1.0 §2.4).
const backChannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims are a logout token's claims (§2.4): no nonce, ever, so that
// a logout token can never pass for an ID token.
type logoutClaims struct {
	Issuer    string              `json:"iss"`
	Subject   string              `json:"sub"`
	Audience  string              `json:"aud"`
	IssuedAt  int64               `json:"iat"`
	Expires   int64               `json:"exp"`
	JWTID     string              `json:"jti"`
	SessionID string              `json:"sid,omitempty"`
	Events    map[string]struct{} `json:"events"`
}

// LogoutToken builds and signs a logout token for app clientID about user
// userID (sub, as in the user's ID tokens to the app: pairwise for a
// pairwise app) and, when sid is not "", that
// session (the sid of the user's ID tokens). It is signed with the key
// that signs the app's ID tokens (its id_token_signed_response_alg, as
// Back-Channel Logout 1.0 §2.4 asks; same kid, so the app checks it
// against the JWKS it already reads) and typed logout+jwt (§2.4). An app that
// requires sid gets no token without one, and an app that is gone none at
// all: both are errors.
func (p *Provider) LogoutToken(ctx context.Context, clientID, userID, sid string) (string, error) {
	if userID == "" {
		return "", errors.New("logout token: empty user ID")
	}
	c, err := p.opts.Store.GetClient(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("logout token for app %q: %w", clientID, err)
	}
	if c.BackchannelLogoutSessionRequired && sid == "" {
		return "", fmt.Errorf("logout token for app %q: the app requires sid and none is known", clientID)
	}
	key, err := p.opts.Keys.signer(ctx, c.IDTokenSignedResponseAlg)
	if err != nil {
		return "", fmt.Errorf("logout token: signing key: %w", err)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.SignatureAlgorithm(), Key: jose.JSONWebKey{Key: key.Key(), KeyID: key.ID()}},
		(&jose.SignerOptions{}).WithType("logout+jwt"),
	)
	if err != nil {
		return "", fmt.Errorf("logout token: signer: %w", err)
	}
	now := p.opts.Now()
	claims := logoutClaims{
		Issuer: p.opts.Issuer, Subject: p.opts.Subjects.Subject(c, userID), Audience: clientID,
		IssuedAt: now.Unix(), Expires: now.Add(LogoutTokenLifetime).Unix(),
		JWTID: account.NewSecret(), SessionID: sid,
		Events: map[string]struct{}{backChannelLogoutEvent: {}},
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("logout token: sign: %w", err)
	}
	return jws.CompactSerialize()
}

// BackChannelLogout signs the logout token l describes and posts it to
// l.URI (DeliverLogoutToken with its defaults).
func (p *Provider) BackChannelLogout(ctx context.Context, l account.BackChannelLogout) error {
	token, err := p.LogoutToken(ctx, l.ClientID, l.UserID, l.SID)
	if err != nil {
		return err
	}
	var client *http.Client // an administrator's app: the URI they set
	if c, err := p.opts.Store.GetClient(ctx, l.ClientID); err == nil && c.RegistrationAccessTokenHash != "" {
		// An app that registered itself (RFC 7591) chose the URI itself:
		// it goes through the SSRF guard its jwks_uri goes through, so a
		// registrant cannot make Keyport post to its own machine or
		// network.
		client = p.storage.assertions.jwks.Client
	}
	return DeliverLogoutToken(ctx, client, l.URI, token)
}

// Bounds of a delivery: the time it may take (as the webhooks),
// and how much of the answer is read (only to reuse the connection; the
// specification gives the body no meaning).
const (
	LogoutDeliveryTimeout = 5 * time.Second
	maxLogoutAnswerBytes  = 4 << 10
)

// LogoutDeliveryError is a logout token the app did not take: Status is
// its HTTP status, 0 when no answer came (the connection failed or timed
// out). Retry says whether sending it again may help: no answer, a 5xx or
// 429; any other status (a 400 means the app refused the token, §2.8) will
// not change.
type LogoutDeliveryError struct {
	URI    string
	Status int
	Retry  bool
	Err    error
}

func (e *LogoutDeliveryError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("back-channel logout to %s: %v", e.URI, e.Err)
	}
	return fmt.Sprintf("back-channel logout to %s: the app answered %d %s", e.URI, e.Status, http.StatusText(e.Status))
}

func (e *LogoutDeliveryError) Unwrap() error { return e.Err }

// logoutClient sends logout tokens: LogoutDeliveryTimeout, and a redirect
// is an answer, never followed (a logout token goes to the registered
// URI only).
var logoutClient = &http.Client{
	Timeout:       LogoutDeliveryTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// DeliverLogoutToken posts token to an app's back-channel logout URI as
// §2.5 says (application/x-www-form-urlencoded, logout_token=…) and
// classifies the answer: 200 or 204 is success (nil), anything else a
// *LogoutDeliveryError. client nil uses a client with a 5-second timeout
// that follows no redirects; a client given is used as it is, so it must
// do the same. Refusing addresses (SSRF rules) is the caller's, through
// the client's dialer.
func DeliverLogoutToken(ctx context.Context, client *http.Client, uri, token string) error {
	if client == nil {
		client = logoutClient
	}
	ctx, cancel := context.WithTimeout(ctx, LogoutDeliveryTimeout)
	defer cancel()
	body := url.Values{"logout_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
	if err != nil {
		return &LogoutDeliveryError{URI: uri, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// §2.5: the answer must not be cached, and neither should the request.
	req.Header.Set("Cache-Control", "no-store")
	resp, err := client.Do(req)
	if err != nil {
		return &LogoutDeliveryError{URI: uri, Retry: true, Err: err}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxLogoutAnswerBytes))
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		return nil
	}
	retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return &LogoutDeliveryError{URI: uri, Status: resp.StatusCode, Retry: retry}
}
