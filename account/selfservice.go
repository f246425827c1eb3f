package account

// The self-service controls of a user's own account beyond the profile
// and credentials: the apps they consented to (connected apps) and their
// signed-in browsers, one at a time.

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
)

// ConnectedApp is an app a user has consented to: what they allowed it,
// when, and when it last got a token for them.
type ConnectedApp struct {
	ClientID string
	// Name is the app's name ("" when it has none: show ClientID).
	Name string
	// Deleted: the app was removed, but the consent is still stored. It can
	// be revoked like any other.
	Deleted bool
	Scopes  []string
	// ConsentedAt is the last consent (the one that granted the newest
	// scopes); the first was at FirstConsentAt.
	ConsentedAt    time.Time
	FirstConsentAt time.Time
	// LastUsedAt is the last token issued or refreshed for the user at the
	// app; zero when none since the consent.
	LastUsedAt time.Time
}

// ConnectedApps lists the apps the user has consented to, by client ID.
// Apps that skip consent (first-party apps) are not among them: there is
// no consent to take back.
func (s *SignInService) ConnectedApps(ctx context.Context, userID string) ([]ConnectedApp, error) {
	grants, err := s.store.ListGrants(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list connected apps of %q: %w", userID, err)
	}
	out := make([]ConnectedApp, 0, len(grants))
	for _, g := range grants {
		app := ConnectedApp{ClientID: g.ClientID, Scopes: g.Scopes, ConsentedAt: g.UpdatedAt, FirstConsentAt: g.CreatedAt, LastUsedAt: g.LastUsedAt}
		if app.ConsentedAt.IsZero() {
			app.ConsentedAt = g.CreatedAt
		}
		c, err := s.store.GetClient(ctx, g.ClientID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			app.Deleted = true
		case err != nil:
			return nil, fmt.Errorf("load client %q of a grant of %q: %w", g.ClientID, userID, err)
		default:
			app.Name = c.Name
		}
		out = append(out, app)
	}
	return out, nil
}

var errAppNotConnected = Errorf(NotFound, "This app is not connected to your account.")

// RevokeApp takes back the user's consent to an app and ends the app's
// access: every refresh and access token it holds for the user is revoked,
// and its next sign-in asks for consent again. The user's other apps, and
// other users of the app, keep theirs. It writes a "consent.revoked"
// audit event with the scopes that were granted.
func (s *SignInService) RevokeApp(ctx context.Context, actor Actor, userID, clientID string) error {
	if err := s.mayActFor(ctx, actor, userID); err != nil {
		return err
	}
	if clientID == "" {
		return errAppNotConnected
	}
	g, err := s.store.GetGrant(ctx, userID, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return errAppNotConnected
	}
	if err != nil {
		return fmt.Errorf("load grant of %q to %q: %w", userID, clientID, err)
	}
	// The tokens go first: should the grant's removal fail, trying again
	// still finds the grant and finishes the job.
	n, err := s.store.RevokeUserClient(ctx, userID, clientID)
	if err != nil {
		return fmt.Errorf("revoke tokens of %q at %q: %w", userID, clientID, err)
	}
	if err := s.store.DeleteGrant(ctx, userID, clientID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete grant of %q to %q: %w", userID, clientID, err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: EventConsentRevoked, TargetUserID: userID, ClientID: clientID,
		Changes: []storage.AuditChange{{Field: "scopes", Before: strings.Join(g.Scopes, " ")}}})
	s.log.InfoContext(ctx, "consent revoked", "user_id", userID, "client_id", clientID, "tokens_revoked", n)
	return nil
}

// SessionHandle names a session on a page and in a form. It is derived
// from the session's ID, which is the hash of the cookie's secret and the
// key that finds the session, and which therefore stays in the store.
func SessionHandle(sess storage.Session) string {
	sum := sha256.Sum256([]byte("keyport session handle\x00" + sess.ID))
	return hex.EncodeToString(sum[:16])
}

var errNoSuchSession = Errorf(NotFound, "This browser is no longer signed in.")

// EndUserSession signs one of userID's browsers out, the one whose
// SessionHandle is handle, and returns it. A handle of no session of
// userID (another user's, or one that has ended) is NotFound and changes
// nothing. It writes a "session.ended" audit event.
func (s *SignInService) EndUserSession(ctx context.Context, actor Actor, userID, handle string) (storage.Session, error) {
	if err := s.mayActFor(ctx, actor, userID); err != nil {
		return storage.Session{}, err
	}
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return storage.Session{}, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	for _, sess := range sessions {
		if subtle.ConstantTimeCompare([]byte(SessionHandle(sess)), []byte(handle)) != 1 {
			continue
		}
		s.logoutSession(ctx, sess)
		err := s.store.DeleteSession(ctx, sess.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return storage.Session{}, errNoSuchSession
		}
		if err != nil {
			return storage.Session{}, fmt.Errorf("end a session of %q: %w", userID, err)
		}
		browser, system := DeviceParts(sess.UserAgent)
		s.audit(ctx, actor, storage.AuditEvent{Type: EventSessionEnded, TargetUserID: userID,
			Changes: []storage.AuditChange{
				{Field: "session_device", Before: strings.TrimSpace(browser + " " + system)},
				{Field: "session_ip", Before: sess.IP},
				{Field: "session_signed_in", Before: sess.AuthTime.UTC().Format(time.RFC3339)},
			}})
		return sess, nil
	}
	return storage.Session{}, errNoSuchSession
}

// mayActFor refuses a change to userID's account by anyone but the user
// themselves or an administrator, and by read-only credentials.
func (s *SignInService) mayActFor(ctx context.Context, a Actor, userID string) error {
	if err := a.mayWrite(); err != nil {
		return err
	}
	if a.Kind != ActorUser || a.UserID == userID {
		return nil
	}
	u, err := s.store.GetUser(ctx, a.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("load acting user %q: %w", a.UserID, err)
	}
	if err != nil || !u.Admin {
		return Errorf(Forbidden, "You may change only your own account.")
	}
	return nil
}
