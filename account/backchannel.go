package account

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/keyport/keyport/storage"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0) through the
// outbox: when sessions end, the logout tokens to send (BackChannelLogout,
// which holds no secret) are queued before the sessions are deleted, and
// a worker signs and posts each token when it delivers it (a token lives
// two minutes, a delivery may be retried for a day). Queued first, a crash
// between the two can only tell an app of a sign-out that then did not
// happen, never forget one that did.

// OutboxBackChannelLogout is the outbox kind of back-channel logouts; the
// payload is a BackChannelLogout as JSON (OpenBackChannelLogout).
const OutboxBackChannelLogout = "backchannel_logout"

// backChannel queues back-channel logouts; off (nil in core) until
// EnableBackChannelLogout.
type backChannel struct {
	signIn *SignInService
	outbox storage.Outbox
}

// EnableBackChannelLogout queues a logout for every app with a
// back-channel logout URI whenever sessions end; the outbox worker must
// deliver OutboxBackChannelLogout.
func (s *Service) EnableBackChannelLogout(outbox storage.Outbox) {
	s.core.backChannel.Store(&backChannel{signIn: s.SignIn, outbox: outbox})
}

// OpenBackChannelLogout reads an outbox message of kind
// OutboxBackChannelLogout.
func OpenBackChannelLogout(payload []byte) (BackChannelLogout, error) {
	var l BackChannelLogout
	if err := json.Unmarshal(payload, &l); err != nil {
		return BackChannelLogout{}, fmt.Errorf("decode back-channel logout: %w", err)
	}
	if l.ClientID == "" || l.URI == "" || l.UserID == "" {
		return BackChannelLogout{}, fmt.Errorf("decode back-channel logout: client, URI or user missing")
	}
	return l, nil
}

// logoutSession queues the logouts for sess, which is about to end.
func (s *core) logoutSession(ctx context.Context, sess storage.Session) {
	if bc := s.backChannel.Load(); bc != nil {
		s.queueLogouts(ctx, bc, bc.signIn.BackChannelLogoutsForSession(ctx, sess))
	}
}

// logoutUser queues the logouts for every session of userID, which are
// about to end.
func (s *core) logoutUser(ctx context.Context, userID string) {
	bc := s.backChannel.Load()
	if bc == nil {
		return
	}
	ls, err := bc.signIn.BackChannelLogoutsForUser(ctx, userID)
	if err != nil {
		s.log.ErrorContext(ctx, "list the apps to tell of a sign-out", "user_id", userID, "err", err)
		return
	}
	s.queueLogouts(ctx, bc, ls)
}

// queueLogouts writes ls to the outbox in one commit. Signing out must not
// fail because an app cannot be told, so a failure is logged at ERROR.
func (s *core) queueLogouts(ctx context.Context, bc *backChannel, ls []BackChannelLogout) {
	if len(ls) == 0 {
		return
	}
	now := s.now()
	msgs := make([]storage.OutboxMessage, 0, len(ls))
	for _, l := range ls {
		raw, err := json.Marshal(l)
		if err != nil {
			s.log.ErrorContext(ctx, "encode a back-channel logout", "client_id", l.ClientID, "err", err)
			continue
		}
		msgs = append(msgs, storage.OutboxMessage{ID: newOrderedID(now), Kind: OutboxBackChannelLogout, Payload: raw, CreatedAt: now})
	}
	if err := bc.outbox.EnqueueOutbox(ctx, msgs...); err != nil {
		s.log.ErrorContext(ctx, "queue back-channel logouts", "user_id", ls[0].UserID, "apps", len(msgs), "err", err)
		return
	}
	s.wakeOutbox()
}
