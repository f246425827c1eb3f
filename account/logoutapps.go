package account

// Which apps hear that a person signed out (OpenID Connect Front-Channel
// and Back-Channel Logout 1.0). The specifications say the OP tells the
// RPs the user is logged in to. Keyport knows that per browser session:
// the provider records on the session every app that exchanged a code in
// it (storage.Session.ClientIDs), as Keycloak keeps a user session's
// client sessions. An app that got no tokens through the session (its
// sign-in never finished) is not told; an app that got tokens through
// another browser session is told when that one ends.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/keyport/keyport/storage"
)

// FrontChannelLogoutURLs are the addresses the signed-out page loads in
// iframes for session sess, which is ending: the front-channel logout URI
// of every app that got tokens in it (not held for approval), with iss (issuer) and sid added to
// its query for an app that asks for them
// (FrontchannelLogoutSessionRequired), its own query kept as it is. Apps
// removed since, or without the URI, are left out; a store failure is
// logged and leaves out the app, since signing out must not fail for it.
func (s *SignInService) FrontChannelLogoutURLs(ctx context.Context, issuer string, sess storage.Session) []string {
	var out []string
	for _, c := range s.sessionApps(ctx, sess) {
		if c.FrontchannelLogoutURI == "" {
			continue
		}
		u := c.FrontchannelLogoutURI
		if c.FrontchannelLogoutSessionRequired {
			u = withQuery(u, url.Values{"iss": {issuer}, "sid": {ClientSID(c, sess.ID)}})
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// withQuery appends extra to raw's query, keeping what is there byte for
// byte (the app's own parameters, in its order and encoding).
func withQuery(raw string, extra url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.RawQuery == "" {
		u.RawQuery = extra.Encode()
	} else {
		u.RawQuery += "&" + extra.Encode()
	}
	return u.String()
}

// sessionApps are the apps that got tokens in sess, still exist and are
// not held for approval.
func (s *SignInService) sessionApps(ctx context.Context, sess storage.Session) []storage.Client {
	out := make([]storage.Client, 0, len(sess.ClientIDs))
	for _, id := range sess.ClientIDs {
		c, err := GetLiveClient(ctx, s.store, id)
		if errors.Is(err, storage.ErrNotFound) {
			// Gone, or held: a held app's logout URIs may be unapproved.
			continue
		}
		if err != nil {
			s.log.ErrorContext(ctx, "load an app to tell of a sign-out", "client_id", id, "err", err)
			continue
		}
		out = append(out, c)
	}
	return out
}

// BackChannelLogout is one logout token to send (Back-Channel Logout 1.0
// §2.5): to app ClientID at URI, about UserID and, when SID is set, that
// session only; SID "" tells the app that every session of the user
// ended.
type BackChannelLogout struct {
	ClientID string
	URI      string
	UserID   string
	SID      string
}

// BackChannelLogoutsForSession lists the logout tokens to send when
// session sess ends (the person signs out in that browser, or an admin or
// the person ends it): one per app that got tokens in it and registered a
// back-channel logout URI, each naming the session's sid.
func (s *SignInService) BackChannelLogoutsForSession(ctx context.Context, sess storage.Session) []BackChannelLogout {
	var out []BackChannelLogout
	for _, c := range s.sessionApps(ctx, sess) {
		if c.BackchannelLogoutURI != "" {
			out = append(out, BackChannelLogout{ClientID: c.ID, URI: c.BackchannelLogoutURI, UserID: sess.UserID, SID: ClientSID(c, sess.ID)})
		}
	}
	return out
}

// BackChannelLogoutsForUser lists the logout tokens to send when every
// session of userID ends (signed out everywhere, blocked, deleted, a
// password reset). Call it before the sessions are deleted. The apps are
// those with a back-channel logout URI that got tokens in one of the
// user's live sessions or hold the user's consent (a grant): an app that
// does not require sid gets one token without it, which ends every
// session of the user there, those of sessions Keyport has forgotten
// (expired, but with a refresh token still alive) included; an app that
// requires sid gets one token per live session it was signed in to
// through, since it would refuse a token without sid.
func (s *SignInService) BackChannelLogoutsForUser(ctx context.Context, userID string) ([]BackChannelLogout, error) {
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q for back-channel logout: %w", userID, err)
	}
	grants, err := s.store.ListGrants(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list grants of %q for back-channel logout: %w", userID, err)
	}
	var ids []string
	sessionsOf := map[string][]string{} // the IDs of each app's sessions
	for _, sess := range sessions {
		for _, id := range sess.ClientIDs {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			sessionsOf[id] = append(sessionsOf[id], sess.ID)
		}
	}
	for _, g := range grants {
		if !slices.Contains(ids, g.ClientID) {
			ids = append(ids, g.ClientID)
		}
	}
	var out []BackChannelLogout
	for _, id := range ids {
		c, err := GetLiveClient(ctx, s.store, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue // gone, or held with a logout URI maybe unapproved
		}
		if err != nil {
			return nil, fmt.Errorf("load app %q for back-channel logout: %w", id, err)
		}
		if c.BackchannelLogoutURI == "" {
			continue
		}
		if !c.BackchannelLogoutSessionRequired {
			out = append(out, BackChannelLogout{ClientID: c.ID, URI: c.BackchannelLogoutURI, UserID: userID})
			continue
		}
		for _, sessID := range sessionsOf[id] {
			out = append(out, BackChannelLogout{ClientID: c.ID, URI: c.BackchannelLogoutURI, UserID: userID, SID: ClientSID(c, sessID)})
		}
	}
	return out, nil
}
