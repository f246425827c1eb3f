package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// Webhooks tell other systems of account events. An admin's hook
// (OwnerUserID "") hears every user's events; a user's own hook (the APIO
// core profile's callbacks) hears the events about that user, those of
// what the user did (ActorID: a system account's blocks), and those that
// end a workflow the user started (Initiator: an invitation accepted or
// expired, a reset link used or expired). The
// reactor below turns each audit event into one outbox message per
// matching hook, committed with the event, deciding from a list of hooks
// kept in memory (reloaded on every change), so an event costs nothing
// when there are no hooks. The worker delivers the messages (Deliver): a
// signed POST through webhook's SSRF guard, retried with backoff for a day,
// each attempt logged with the hook; a hook that keeps failing is turned
// off until its owner turns it on again.

// OutboxWebhook is the outbox kind of webhook calls; the payload is a
// webhookCall as JSON, which holds no secret.
const OutboxWebhook = "webhook"

// The audit events of webhooks.
const (
	EventWebhookCreated  = "webhook.created"
	EventWebhookUpdated  = "webhook.updated"
	EventWebhookDeleted  = "webhook.deleted"
	EventWebhookDisabled = "webhook.disabled" // by Keyport, after failures; Reason says why
	EventWebhookEnabled  = "webhook.enabled"
	// EventWebhookSecretRotated: a hook got a new signing secret (never
	// in the event); the old one stopped at once.
	EventWebhookSecretRotated = "webhook.secret_rotated"
)

// Limits of webhooks.
const (
	// MaxWebhooksPerUser bounds a user's own hooks.
	MaxWebhooksPerUser = 10
	// MaxAdminWebhooks bounds the admins' hooks, which every event is
	// matched against.
	MaxAdminWebhooks = 100
	// MaxWebhookEventTypes bounds a hook's event type filter.
	MaxWebhookEventTypes = 50
	// DefaultWebhookMaxFailures is how many failed attempts in a row turn
	// a hook off when EnableWebhooks is given none: with the outbox's
	// backoff (30 s doubling to an hour) about ten hours of failure.
	DefaultWebhookMaxFailures = 20
	webhookSealPurpose        = "webhook secret"
	// webhookKeyBytes is the size of a hook's HMAC key (Standard Webhooks
	// asks for 24 to 64 bytes).
	webhookKeyBytes = 32
)

// newWebhookSecret makes a signing secret in the Standard Webhooks form:
// "whsec_" and the key in standard base64, so that the same string works
// as written for Keyport-Signature and in a Standard Webhooks library for
// webhook-signature (webhook.StandardKey).
func newWebhookSecret() string {
	key := make([]byte, webhookKeyBytes)
	if _, err := rand.Read(key); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

var eventTypePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// WebhookService manages webhooks and delivers their calls.
type WebhookService struct {
	*core
	store       storage.Webhooks
	users       userGetter
	guard       *webhook.Guard
	client      *http.Client
	maxFailures int

	// hooks is every stored webhook, for the reactor; reloading serializes
	// its reloads, so the last one reads the newest state.
	hooks     atomic.Pointer[[]storage.Webhook]
	reloading sync.Mutex
}

// WebhookOptions configures EnableWebhooks.
type WebhookOptions struct {
	Store storage.Webhooks
	Guard *webhook.Guard
	// MaxFailures: failed attempts in a row that turn a hook off;
	// DefaultWebhookMaxFailures when <= 0.
	MaxFailures int
}

// EnableWebhooks loads the webhooks, sets s.Webhooks and starts turning
// account events into webhook calls (outbox kind OutboxWebhook, which the
// caller's worker must deliver with s.Webhooks.Deliver).
func (s *Service) EnableWebhooks(ctx context.Context, o WebhookOptions) (*WebhookService, error) {
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultWebhookMaxFailures
	}
	w := &WebhookService{core: s.core, store: o.Store, users: s.Users.store, guard: o.Guard, client: o.Guard.Client(), maxFailures: o.MaxFailures}
	if err := w.reload(ctx); err != nil {
		return nil, err
	}
	s.Webhooks = w
	s.AddReactor(w.react)
	return w, nil
}

// reload reads every webhook into memory.
func (s *WebhookService) reload(ctx context.Context) error {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	all, err := s.store.ListWebhooks(ctx)
	if err != nil {
		return fmt.Errorf("load webhooks: %w", err)
	}
	s.hooks.Store(&all)
	return nil
}

// afterChange reloads the hooks after a change that has been stored; a
// failure is logged (the next change reloads again).
func (s *WebhookService) afterChange(ctx context.Context) {
	if err := s.reload(ctx); err != nil {
		s.log.ErrorContext(ctx, "reload webhooks", "err", err)
	}
}

// WebhookEvent is the JSON body of a webhook call. ID is the audit event's
// ID: the same in every retry, for receivers to de-duplicate on.
type WebhookEvent struct {
	ID      string           `json:"id"`
	Type    string           `json:"type"`
	Time    string           `json:"time"` // RFC 3339
	Subject string           `json:"subject,omitempty"`
	Data    WebhookEventData `json:"data"`
}

// WebhookEventData is what an event tells of itself: never a secret, and
// of changed fields only their names (not before and after).
type WebhookEventData struct {
	ActorKind     string   `json:"actor_kind"`
	ActorID       string   `json:"actor_id,omitempty"`
	ClientID      string   `json:"client_id,omitempty"`
	TargetID      string   `json:"target_id,omitempty"`
	ChangedFields []string `json:"changed_fields,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Method        string   `json:"method,omitempty"`
}

// webhookCall is an outbox message's payload.
type webhookCall struct {
	WebhookID string          `json:"webhook_id"`
	Event     json.RawMessage `json:"event"`
}

// eventBody is the body every hook gets for e.
func eventBody(e storage.AuditEvent) ([]byte, error) {
	ev := WebhookEvent{
		ID: e.ID, Type: e.Type, Time: e.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Subject: e.TargetUserID,
		Data: WebhookEventData{ActorKind: e.ActorKind, ActorID: e.ActorID, ClientID: e.ClientID, TargetID: e.TargetID, Reason: e.Reason, Method: e.Method},
	}
	for _, c := range e.Changes {
		ev.Data.ChangedFields = append(ev.Data.ChangedFields, c.Field)
	}
	return json.Marshal(ev)
}

// wants tells whether hook h wants event e.
func wants(h storage.Webhook, e storage.AuditEvent) bool {
	if h.Disabled {
		return false
	}
	if o := h.OwnerUserID; o != "" && o != e.TargetUserID && o != e.Initiator && (e.ActorKind != ActorUser || o != e.ActorID) {
		return false
	}
	return len(h.EventTypes) == 0 || slices.Contains(h.EventTypes, e.Type)
}

// react is the reactor: one message per hook that wants e.
func (s *WebhookService) react(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
	hooks := s.hooks.Load()
	if hooks == nil || len(*hooks) == 0 {
		return nil
	}
	var out []storage.OutboxMessage
	var body []byte
	blocked := map[string]bool{} // owner → blocked, read once per event
	for _, h := range *hooks {
		if !wants(h, e) {
			continue
		}
		if o := h.OwnerUserID; o != "" {
			off, seen := blocked[o]
			if !seen {
				off = s.ownerBlocked(ctx, o)
				blocked[o] = off
			}
			if off {
				continue // a blocked account's hooks hear nothing while it is
			}
		}
		if body == nil {
			var err error
			if body, err = eventBody(e); err != nil {
				s.log.ErrorContext(ctx, "encode webhook event", "type", e.Type, "err", err)
				return nil
			}
		}
		raw, err := json.Marshal(webhookCall{WebhookID: h.ID, Event: body})
		if err != nil {
			s.log.ErrorContext(ctx, "encode webhook call", "webhook_id", h.ID, "err", err)
			continue
		}
		out = append(out, storage.OutboxMessage{ID: newOrderedID(e.Time), Kind: OutboxWebhook, Payload: raw, CreatedAt: e.Time})
	}
	// The messages are committed after the reactor returns, with the
	// event; whoever commits them wakes the worker (core.reacted).
	return out
}

// ownerBlocked tells whether the owner of a user's own hook is blocked
// (or gone): their account is off, and so are its hooks. A failure to read
// counts as not blocked (Deliver checks again).
func (s *WebhookService) ownerBlocked(ctx context.Context, owner string) bool {
	u, err := s.users.GetUser(ctx, owner)
	if errors.Is(err, storage.ErrNotFound) {
		return true
	}
	if err != nil {
		s.log.ErrorContext(ctx, "load the owner of a webhook", "user_id", owner, "err", err)
		return false
	}
	return u.Blocked
}

// The delivery log's entries for a call dropped because its hook's owner
// is blocked, or was deleted.
const (
	ownerOffReason  = "Not sent: the owner's account is blocked."
	ownerGoneReason = "Not sent: the owner's account no longer exists."
)

// ErrWebhookGivenUp marks a delivery error that retrying cannot cure: the
// hook is gone or off, its address is refused, or it answered with a
// client error other than 408 and 429.
var ErrWebhookGivenUp = errors.New("webhook call given up")

// Deliver makes the call of outbox message m and logs the attempt with
// its hook. It returns nil when the receiver answered 2xx, an error
// wrapping ErrWebhookGivenUp when a retry cannot help, and any other
// error when one may.
func (s *WebhookService) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	var call webhookCall
	var ev struct{ ID, Type string }
	if err := json.Unmarshal(m.Payload, &call); err != nil || call.WebhookID == "" || json.Unmarshal(call.Event, &ev) != nil {
		return fmt.Errorf("%w: decode webhook call %q", ErrWebhookGivenUp, m.ID)
	}
	h, err := s.store.GetWebhook(ctx, call.WebhookID)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: webhook %q was deleted", ErrWebhookGivenUp, call.WebhookID)
	}
	if err != nil {
		return fmt.Errorf("load webhook %q: %w", call.WebhookID, err)
	}
	if h.Disabled {
		return fmt.Errorf("%w: webhook %q is disabled", ErrWebhookGivenUp, h.ID)
	}
	if h.OwnerUserID != "" {
		// A call queued before its owner was blocked is dropped, with
		// the reason in the hook's log; it is not the receiver's failure.
		u, err := s.users.GetUser(ctx, h.OwnerUserID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("load the owner of webhook %q: %w", h.ID, err)
		}
		if err != nil || u.Blocked {
			reason := ownerOffReason
			if err != nil {
				reason = ownerGoneReason
			}
			d := storage.WebhookDelivery{MessageID: m.ID, EventID: ev.ID, EventType: ev.Type, At: s.now(), Attempt: m.Attempts + 1, Error: reason}
			if _, err := s.store.RecordWebhookDelivery(ctx, h.ID, d, nil); err != nil && !errors.Is(err, storage.ErrNotFound) {
				s.log.ErrorContext(ctx, "log a webhook delivery", "webhook_id", h.ID, "err", err)
			}
			return fmt.Errorf("%w: webhook %q: %s", ErrWebhookGivenUp, h.ID, reason)
		}
	}
	secret, err := s.sealer.Open(h.SealedSecret, webhookSealPurpose)
	if err != nil {
		return fmt.Errorf("%w: open the secret of webhook %q: %w", ErrWebhookGivenUp, h.ID, err)
	}
	now := s.now()
	res, callErr := webhook.Post(ctx, s.client, webhook.Call{URL: h.URL, Secret: string(secret), ID: ev.ID, Body: call.Event, At: now})
	if callErr != nil && ctx.Err() != nil {
		return callErr // shutting down: not an attempt of the receiver's
	}
	d := storage.WebhookDelivery{MessageID: m.ID, EventID: ev.ID, EventType: ev.Type, At: now, Attempt: m.Attempts + 1, Status: res.Status, Latency: res.Latency}
	if callErr != nil {
		d.Error = callErr.Error()
		// A user's own hook may not learn what a host name resolves to
		// inside the network (the full reason is in the server's log).
		if h.OwnerUserID != "" && errors.Is(callErr, webhook.ErrRefusedAddress) {
			d.Error = "The receiver's address is not a public one."
		}
	}
	var disabled string
	_, err = s.store.RecordWebhookDelivery(ctx, h.ID, d, func(w *storage.Webhook) error {
		disabled = ""
		if callErr == nil {
			w.ConsecutiveFailures = 0
			return nil
		}
		w.ConsecutiveFailures++
		switch {
		case w.Disabled:
		case res.Status == http.StatusGone:
			disabled = "The receiver answered 410 Gone."
		case w.ConsecutiveFailures >= s.maxFailures:
			disabled = fmt.Sprintf("%d delivery attempts in a row failed; the last: %s", w.ConsecutiveFailures, d.Error)
		}
		if disabled != "" {
			w.Disabled, w.DisabledReason, w.UpdatedAt = true, disabled, now
		}
		return nil
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		s.log.ErrorContext(ctx, "log a webhook delivery", "webhook_id", h.ID, "err", err)
	}
	if disabled != "" && err == nil {
		s.log.WarnContext(ctx, "webhook disabled after failures", "webhook_id", h.ID, "reason", disabled)
		s.afterChange(ctx)
		s.audit(ctx, SystemActor, storage.AuditEvent{Type: EventWebhookDisabled, TargetUserID: h.OwnerUserID, TargetID: h.ID, Reason: disabled})
	}
	switch {
	case callErr == nil:
		return nil
	case !webhook.Retry(res, callErr) || disabled != "":
		return fmt.Errorf("%w: %w", ErrWebhookGivenUp, callErr)
	}
	return callErr
}
