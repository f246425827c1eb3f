package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
)

// DeliveryStore is what DeliveryService needs of storage: the outbox, and
// the users, to check that a person acting is an administrator.
type DeliveryStore interface {
	ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, string, error)
	RetryFailedOutbox(ctx context.Context, id string, now time.Time) (storage.OutboxMessage, error)
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// DeliveryService shows administrators what the outbox holds (mails,
// webhook calls, back-channel logouts on their way out, and the ones that
// failed) and lets them try a failed one again. The console, the
// management API and the command line call it.
type DeliveryService struct {
	*core
	store DeliveryStore
}

// EventOutboxRetried: an administrator made a failed outbox message
// pending again; TargetID is the message.
const EventOutboxRetried = "outbox.retried"

// List returns a page of the outbox messages q selects, newest first,
// and the cursor of the next page ("" at the end). The payloads are left
// out: they are sealed and may hold a link that signs someone in.
func (s *DeliveryService) List(ctx context.Context, actor Actor, q storage.OutboxQuery) ([]storage.OutboxMessage, string, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return nil, "", err
	}
	switch {
	case q.State != "" && q.State != storage.OutboxPending && q.State != storage.OutboxDelivered && q.State != storage.OutboxFailed:
		return nil, "", FieldErrorf("state", "The state must be pending, delivered or failed.")
	case len(q.Kind) > storage.MaxOutboxID || strings.ContainsRune(q.Kind, 0):
		return nil, "", FieldErrorf("kind", "The kind is not valid.")
	case q.Limit < 0 || q.Limit > storage.MaxOutboxLimit:
		return nil, "", FieldErrorf("limit", "The page size must be between 1 and %d.", storage.MaxOutboxLimit)
	case len(q.Cursor) > maxAuditCursor:
		return nil, "", errBadOutboxCursor
	}
	msgs, next, err := s.store.ListOutbox(ctx, q)
	if errors.Is(err, storage.ErrInvalid) {
		return nil, "", &Error{Code: Invalid, Field: "cursor", Message: errBadOutboxCursor.Message, Err: err}
	}
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	for i := range msgs {
		msgs[i].Payload = nil
	}
	if msgs == nil {
		msgs = []storage.OutboxMessage{}
	}
	return msgs, next, nil
}

var errBadOutboxCursor = FieldErrorf("cursor", "The cursor is not valid for this query. Start again from the first page.")

// Retry makes the failed message id pending again, due now, with a
// fresh day of retries (Keycloak's and Svix's "resend": the admin has
// fixed what made it fail, a mailbox or a receiver). A message that is
// not failed is a Conflict, an unknown one NotFound.
func (s *DeliveryService) Retry(ctx context.Context, actor Actor, id string) (storage.OutboxMessage, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return storage.OutboxMessage{}, err
	}
	if id == "" || len(id) > storage.MaxOutboxID || strings.ContainsRune(id, 0) {
		return storage.OutboxMessage{}, errNoSuchDelivery
	}
	m, err := s.store.RetryFailedOutbox(ctx, id, s.now())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.OutboxMessage{}, errNoSuchDelivery
	case errors.Is(err, storage.ErrConflict):
		return storage.OutboxMessage{}, &Error{Code: Conflict, Message: "Only a failed delivery can be tried again.", Err: err}
	case err != nil:
		return storage.OutboxMessage{}, fmt.Errorf("retry outbox message %q: %w", id, err)
	}
	s.log.InfoContext(ctx, "failed outbox message retried by an administrator", "id", id)
	s.audit(ctx, actor, storage.AuditEvent{Type: EventOutboxRetried, TargetID: id})
	s.wakeOutbox() // the retried message goes out at once
	m.Payload = nil
	return m, nil
}

var errNoSuchDelivery = Errorf(NotFound, "There is no such delivery.")

// authorize refuses a read-only actor a change (write) and a person who
// is not an active administrator anything.
func (s *DeliveryService) authorize(ctx context.Context, a Actor, write bool) error {
	if write {
		if err := a.mayWrite(); err != nil {
			return err
		}
	}
	if a.Kind != ActorUser {
		return nil
	}
	u, err := s.store.GetUser(ctx, a.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotAdmin
	}
	if err != nil {
		return fmt.Errorf("load acting user %q: %w", a.UserID, err)
	}
	if !u.Admin || CheckActive(u) != nil {
		return errNotAdmin
	}
	return nil
}
