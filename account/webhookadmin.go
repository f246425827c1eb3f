package account

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// Managing webhooks. Every method takes the actor and whether it acts on
// its own hooks (own: a user through the self-service API, who sees and
// changes only the hooks they own and creates hooks for their own
// events) or as an admin (every hook; creates admins' hooks).

// NewWebhook is what a webhook is created from.
type NewWebhook struct {
	URL        string
	EventTypes []string
}

// WebhookPatch changes a webhook; nil fields stay.
type WebhookPatch struct {
	URL        *string
	EventTypes *[]string
	Disabled   *bool
}

// authorize checks that actor may manage hooks as own says, and returns
// the owner its hooks have.
func (s *WebhookService) authorize(ctx context.Context, actor Actor, own bool) (string, error) {
	if own {
		if actor.Kind != ActorUser || actor.UserID == "" {
			return "", Errorf(Forbidden, "Only a user has their own webhooks.")
		}
		return actor.UserID, actor.mayWrite()
	}
	return "", actor.mayAdminister(ctx, s.users)
}

// mayRead is authorize for reading, which read-only credentials may do.
func (s *WebhookService) mayRead(ctx context.Context, actor Actor, own bool) (string, error) {
	actor.ReadOnly = false
	return s.authorize(ctx, actor, own)
}

func (s *WebhookService) checkURL(raw string) error {
	if len(raw) > webhook.MaxURLBytes {
		return FieldErrorf("url", "The URL must be at most %d bytes.", webhook.MaxURLBytes)
	}
	if err := s.guard.CheckURL(raw); err != nil {
		if errors.Is(err, webhook.ErrRefusedAddress) {
			// The guard's words ("refused address: 10.0.0.1 is a private
			// address") are for the log; a person is told which address
			// and what lets it through, in their language.
			host := raw
			if u, perr := url.Parse(raw); perr == nil {
				host = u.Hostname()
			}
			return FieldErrorf("url", "The URL's address %s is not a public one: webhooks call it only when its network is in webhooks.allow_networks.", host)
		}
		return FieldErrorf("url", "The URL %s.", phrase(err.Error()))
	}
	return nil
}

func checkEventTypes(types []string) ([]string, error) {
	if len(types) > MaxWebhookEventTypes {
		return nil, FieldErrorf("event_types", "At most %d event types.", MaxWebhookEventTypes)
	}
	var out []string
	for _, t := range types {
		if len(t) > 64 || !eventTypePattern.MatchString(t) {
			return nil, FieldErrorf("event_types", "%q is not an event type (such as user.created).", t)
		}
		if !slices.Contains(WebhookEventTypes, t) {
			return nil, FieldErrorf("event_types", "%q is not an event type Keyport sends.", t)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Create stores a new webhook and returns it with its signing secret,
// which is shown this once.
func (s *WebhookService) Create(ctx context.Context, actor Actor, own bool, n NewWebhook) (storage.Webhook, string, error) {
	owner, err := s.authorize(ctx, actor, own)
	if err != nil {
		return storage.Webhook{}, "", err
	}
	if err := s.checkURL(n.URL); err != nil {
		return storage.Webhook{}, "", err
	}
	types, err := checkEventTypes(n.EventTypes)
	if err != nil {
		return storage.Webhook{}, "", err
	}
	existing, err := s.store.ListWebhooksOf(ctx, owner)
	if err != nil {
		return storage.Webhook{}, "", fmt.Errorf("list webhooks of %q: %w", owner, err)
	}
	limit := MaxWebhooksPerUser
	if owner == "" {
		limit = MaxAdminWebhooks
	}
	if len(existing) >= limit {
		return storage.Webhook{}, "", Errorf(Conflict, "There are %d webhooks already, the most allowed.", limit)
	}
	now := s.now()
	secret := newWebhookSecret()
	h := storage.Webhook{
		ID: "wh_" + NewID(), OwnerUserID: owner, URL: n.URL, EventTypes: types,
		SealedSecret: s.sealer.Seal([]byte(secret), webhookSealPurpose), CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateWebhook(ctx, h); err != nil {
		return storage.Webhook{}, "", fmt.Errorf("create webhook: %w", err)
	}
	s.afterChange(ctx)
	s.audit(ctx, actor, storage.AuditEvent{Type: EventWebhookCreated, TargetUserID: owner, TargetID: h.ID})
	return h, secret, nil
}

// List returns the hooks actor may see: its own, or (admins) every hook.
func (s *WebhookService) List(ctx context.Context, actor Actor, own bool) ([]storage.Webhook, error) {
	owner, err := s.mayRead(ctx, actor, own)
	if err != nil {
		return nil, err
	}
	var hooks []storage.Webhook
	if own {
		hooks, err = s.store.ListWebhooksOf(ctx, owner)
	} else {
		hooks, err = s.store.ListWebhooks(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return hooks, nil
}

// errNoWebhook is the answer for a hook that does not exist or is not
// the actor's.
var errNoWebhook = Errorf(NotFound, "No such webhook.")

// get loads hook id if actor may see it.
func (s *WebhookService) get(ctx context.Context, owner string, own bool, id string) (storage.Webhook, error) {
	h, err := s.store.GetWebhook(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && own && h.OwnerUserID != owner) {
		return storage.Webhook{}, errNoWebhook
	}
	if err != nil {
		return storage.Webhook{}, fmt.Errorf("load webhook %q: %w", id, err)
	}
	return h, nil
}

// Get returns one hook.
func (s *WebhookService) Get(ctx context.Context, actor Actor, own bool, id string) (storage.Webhook, error) {
	owner, err := s.mayRead(ctx, actor, own)
	if err != nil {
		return storage.Webhook{}, err
	}
	return s.get(ctx, owner, own, id)
}

// Deliveries returns a hook's delivery log, newest first.
func (s *WebhookService) Deliveries(ctx context.Context, actor Actor, own bool, id string) ([]storage.WebhookDelivery, error) {
	owner, err := s.mayRead(ctx, actor, own)
	if err != nil {
		return nil, err
	}
	if _, err := s.get(ctx, owner, own, id); err != nil {
		return nil, err
	}
	log, err := s.store.ListWebhookDeliveries(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoWebhook
	}
	return log, err
}

// Update changes a hook. Turning it on clears its failures.
func (s *WebhookService) Update(ctx context.Context, actor Actor, own bool, id string, p WebhookPatch) (storage.Webhook, error) {
	owner, err := s.authorize(ctx, actor, own)
	if err != nil {
		return storage.Webhook{}, err
	}
	if _, err := s.get(ctx, owner, own, id); err != nil {
		return storage.Webhook{}, err
	}
	if p.URL != nil {
		if err := s.checkURL(*p.URL); err != nil {
			return storage.Webhook{}, err
		}
	}
	var types []string
	if p.EventTypes != nil {
		if types, err = checkEventTypes(*p.EventTypes); err != nil {
			return storage.Webhook{}, err
		}
	}
	var changed []storage.AuditChange
	enabled := false
	h, err := s.store.UpdateWebhook(ctx, id, func(w *storage.Webhook) error {
		changed, enabled = nil, false
		if p.URL != nil && *p.URL != w.URL {
			w.URL = *p.URL
			changed = append(changed, storage.AuditChange{Field: "url"}) // a URL may hold a token: its name only
		}
		if p.EventTypes != nil && !slices.Equal(types, w.EventTypes) {
			w.EventTypes = types
			changed = append(changed, storage.AuditChange{Field: "event_types"})
		}
		if p.Disabled != nil && *p.Disabled != w.Disabled {
			w.Disabled = *p.Disabled
			w.DisabledReason = ""
			if w.Disabled {
				w.DisabledReason = "Turned off by its owner."
			} else {
				w.ConsecutiveFailures = 0
				enabled = true
			}
			changed = append(changed, storage.AuditChange{Field: "disabled"})
		}
		if len(changed) > 0 {
			w.UpdatedAt = s.now()
		}
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Webhook{}, errNoWebhook
	}
	if err != nil {
		return storage.Webhook{}, fmt.Errorf("update webhook %q: %w", id, err)
	}
	if len(changed) == 0 {
		return h, nil
	}
	s.afterChange(ctx)
	typ := EventWebhookUpdated
	if enabled && len(changed) == 1 {
		typ = EventWebhookEnabled
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: typ, TargetUserID: h.OwnerUserID, TargetID: h.ID, Changes: changed})
	return h, nil
}

// Enable turns a hook on again (after Keyport turned it off), clearing
// its failures.
func (s *WebhookService) Enable(ctx context.Context, actor Actor, own bool, id string) (storage.Webhook, error) {
	off := false
	return s.Update(ctx, actor, own, id, WebhookPatch{Disabled: &off})
}

// Delete removes a hook and its log; its calls still queued are dropped
// when they come due.
func (s *WebhookService) Delete(ctx context.Context, actor Actor, own bool, id string) error {
	owner, err := s.authorize(ctx, actor, own)
	if err != nil {
		return err
	}
	h, err := s.get(ctx, owner, own, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(ctx, id); errors.Is(err, storage.ErrNotFound) {
		return errNoWebhook
	} else if err != nil {
		return fmt.Errorf("delete webhook %q: %w", id, err)
	}
	s.afterChange(ctx)
	s.audit(ctx, actor, storage.AuditEvent{Type: EventWebhookDeleted, TargetUserID: h.OwnerUserID, TargetID: id})
	return nil
}

// RotateSecret gives a hook a new signing secret, returned this once; the
// old one stops at once (the calls still queued are signed with the new
// one when they go out). Event: "webhook.secret_rotated".
func (s *WebhookService) RotateSecret(ctx context.Context, actor Actor, own bool, id string) (storage.Webhook, string, error) {
	owner, err := s.authorize(ctx, actor, own)
	if err != nil {
		return storage.Webhook{}, "", err
	}
	if _, err := s.get(ctx, owner, own, id); err != nil {
		return storage.Webhook{}, "", err
	}
	secret := newWebhookSecret()
	sealed := s.sealer.Seal([]byte(secret), webhookSealPurpose)
	h, err := s.store.UpdateWebhook(ctx, id, func(w *storage.Webhook) error {
		w.SealedSecret, w.UpdatedAt = sealed, s.now()
		return nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Webhook{}, "", errNoWebhook
	}
	if err != nil {
		return storage.Webhook{}, "", fmt.Errorf("rotate the secret of webhook %q: %w", id, err)
	}
	s.afterChange(ctx)
	s.audit(ctx, actor, storage.AuditEvent{Type: EventWebhookSecretRotated, TargetUserID: h.OwnerUserID, TargetID: h.ID})
	return h, secret, nil
}
