package portal

import (
	"net/http"
	"net/url"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The webhooks API: admins manage every hook under /webhooks (their own
// hooks hear every user's events); a user manages their own hooks, which
// hear only their account's events, under /me/webhooks with an API token.
// Every route calls account.WebhookService. A hook's signing secret is in
// the answer that created it only.
func (s *Server) registerWebhookAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/webhooks", s.apiListWebhooks, apiOp{Summary: "List every webhook (admins' and users' own)", Response: listJSON[webhookJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/webhooks", s.apiCreateWebhook, apiOp{Summary: "Register a webhook for every user's events; its signing secret is in this answer only", Body: newWebhookJSON{}, Response: createdWebhookJSON{}, Status: http.StatusCreated})
	at.addAPI(levelAdminAPI, "GET", "/webhooks/{id}", s.apiGetWebhook, apiOp{Summary: "One webhook (never its secret)", Response: webhookJSON{}})
	at.addAPI(levelAdminAPI, "PATCH", "/webhooks/{id}", s.apiPatchWebhook, apiOp{Summary: "Change a webhook's URL, event types, or turn it off or on", Body: webhookPatchJSON{}, Response: webhookJSON{}})
	at.addAPI(levelAdminAPI, "DELETE", "/webhooks/{id}", s.apiDeleteWebhook, apiOp{Summary: "Remove a webhook and its delivery log"})
	at.addAPI(levelAdminAPI, "POST", "/webhooks/{id}/enable", s.apiEnableWebhook, apiOp{Summary: "Turn a webhook on again after Keyport turned it off", Response: webhookJSON{}})
	at.addAPI(levelAdminAPI, "POST", "/webhooks/{id}/rotate-secret", s.apiRotateWebhookSecret, apiOp{Summary: "Give a webhook a new signing secret, in this answer only; the old one stops at once", Response: createdWebhookJSON{}})
	at.addAPI(levelAdminAPI, "GET", "/webhooks/{id}/deliveries", s.apiWebhookDeliveries, apiOp{Summary: "A webhook's last delivery attempts, newest first", Response: listJSON[webhookDeliveryJSON]{}})

	at.addAPI(levelAPIToken, "GET", "/me/webhooks", s.apiListMyWebhooks, apiOp{Summary: "Your own webhooks (any API token)", Response: listJSON[webhookJSON]{}})
	at.addAPI(levelAPIToken, "POST", "/me/webhooks", s.apiCreateMyWebhook, apiOp{Summary: "Register a webhook for your own account's events (a read-write API token); its signing secret is in this answer only", Body: newWebhookJSON{}, Response: createdWebhookJSON{}, Status: http.StatusCreated})
	at.addAPI(levelAPIToken, "GET", "/me/webhooks/{id}", s.apiGetMyWebhook, apiOp{Summary: "One of your webhooks", Response: webhookJSON{}})
	at.addAPI(levelAPIToken, "DELETE", "/me/webhooks/{id}", s.apiDeleteMyWebhook, apiOp{Summary: "Remove one of your webhooks"})
	at.addAPI(levelAPIToken, "POST", "/me/webhooks/{id}/enable", s.apiEnableMyWebhook, apiOp{Summary: "Turn one of your webhooks on again", Response: webhookJSON{}})
	at.addAPI(levelAPIToken, "POST", "/me/webhooks/{id}/rotate-secret", s.apiRotateMyWebhookSecret, apiOp{Summary: "Give one of your webhooks a new signing secret (a read-write API token), in this answer only; the old one stops at once", Response: createdWebhookJSON{}})
	at.addAPI(levelAPIToken, "GET", "/me/webhooks/{id}/deliveries", s.apiMyWebhookDeliveries, apiOp{Summary: "Your webhook's last delivery attempts, newest first", Response: listJSON[webhookDeliveryJSON]{}})
}

type webhookJSON struct {
	ID                  string    `json:"id"`
	OwnerUserID         string    `json:"owner_user_id,omitempty"`
	URL                 string    `json:"url"`
	EventTypes          []string  `json:"event_types"`
	Disabled            bool      `json:"disabled"`
	DisabledReason      string    `json:"disabled_reason,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

type createdWebhookJSON struct {
	Webhook webhookJSON `json:"webhook"`
	// Secret signs the calls, shown this once: as written it keys
	// Keyport-Signature; in a Standard Webhooks library it verifies
	// webhook-signature.
	Secret string `json:"secret"`
}

type newWebhookJSON struct {
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types,omitempty"`
}

type webhookPatchJSON struct {
	URL        *string   `json:"url,omitempty"`
	EventTypes *[]string `json:"event_types,omitempty"`
	Disabled   *bool     `json:"disabled,omitempty"`
}

type webhookDeliveryJSON struct {
	MessageID string    `json:"message_id"`
	EventID   string    `json:"event_id,omitempty"`
	EventType string    `json:"event_type,omitempty"`
	At        time.Time `json:"at"`
	Attempt   int       `json:"attempt"`
	Status    int       `json:"status,omitempty"`
	LatencyMS int64     `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
}

func webhookView(h storage.Webhook) webhookJSON {
	types := h.EventTypes
	if types == nil {
		types = []string{}
	}
	return webhookJSON{ID: h.ID, OwnerUserID: h.OwnerUserID, URL: h.URL, EventTypes: types, Disabled: h.Disabled, DisabledReason: h.DisabledReason,
		ConsecutiveFailures: h.ConsecutiveFailures, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt}
}

// webhooks is the service, or an error when webhooks are off.
func (s *Server) webhooks() (*account.WebhookService, error) {
	if s.acct.Webhooks == nil {
		return nil, account.Errorf(account.Unavailable, "Webhooks are not available here.")
	}
	return s.acct.Webhooks, nil
}

// tokenActor is the actor of a self-service API call.
func tokenActor(r *http.Request, c apiCaller) account.Actor {
	return account.Actor{Kind: account.ActorUser, UserID: c.User.ID, IP: clientIP(r), UserAgent: r.UserAgent(), ReadOnly: c.Token.Scope != account.ScopeReadWrite}
}

func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	list, err := hs.List(r.Context(), a, own)
	if err != nil {
		return err
	}
	items := make([]webhookJSON, 0, len(list))
	for _, h := range list {
		items = append(items, webhookView(h))
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, a account.Actor, own bool, base string) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	var b newWebhookJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	h, secret, err := hs.Create(r.Context(), a, own, account.NewWebhook{URL: b.URL, EventTypes: b.EventTypes})
	if err != nil {
		return err
	}
	w.Header().Set("Location", base+url.PathEscape(h.ID))
	writeJSON(w, http.StatusCreated, createdWebhookJSON{Webhook: webhookView(h), Secret: secret})
	return nil
}

// withWebhook reads the service and the path's webhook ID, runs do, and
// answers with what it returns: 200 with the value, 204 for nil.
func (s *Server) withWebhook(w http.ResponseWriter, r *http.Request, do func(hs *account.WebhookService, id string) (any, error)) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id, err := pathID(r, "webhook")
	if err != nil {
		return err
	}
	out, err := do(hs, id)
	if err != nil {
		return err
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	return s.withWebhook(w, r, func(hs *account.WebhookService, id string) (any, error) {
		h, err := hs.Get(r.Context(), a, own, id)
		return webhookView(h), err
	})
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	return s.withWebhook(w, r, func(hs *account.WebhookService, id string) (any, error) {
		return nil, hs.Delete(r.Context(), a, own, id)
	})
}

func (s *Server) enableWebhook(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	return s.withWebhook(w, r, func(hs *account.WebhookService, id string) (any, error) {
		h, err := hs.Enable(r.Context(), a, own, id)
		return webhookView(h), err
	})
}

func (s *Server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	return s.withWebhook(w, r, func(hs *account.WebhookService, id string) (any, error) {
		h, secret, err := hs.RotateSecret(r.Context(), a, own, id)
		if err != nil {
			return nil, err
		}
		w.Header().Set("Cache-Control", "no-store")
		return createdWebhookJSON{Webhook: webhookView(h), Secret: secret}, nil
	})
}

func (s *Server) webhookDeliveries(w http.ResponseWriter, r *http.Request, a account.Actor, own bool) error {
	return s.withWebhook(w, r, func(hs *account.WebhookService, id string) (any, error) {
		log, err := hs.Deliveries(r.Context(), a, own, id)
		if err != nil {
			return nil, err
		}
		items := make([]webhookDeliveryJSON, 0, len(log))
		for _, d := range log {
			items = append(items, webhookDeliveryJSON{MessageID: d.MessageID, EventID: d.EventID, EventType: d.EventType, At: d.At, Attempt: d.Attempt,
				Status: d.Status, LatencyMS: d.Latency.Milliseconds(), Error: d.Error})
		}
		return newList(items, ""), nil
	})
}

func (s *Server) apiListWebhooks(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.listWebhooks(w, r, a, false)
}

func (s *Server) apiCreateWebhook(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.createWebhook(w, r, a, false, "/api/v1/webhooks/")
}

func (s *Server) apiGetWebhook(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.getWebhook(w, r, a, false)
}

func (s *Server) apiPatchWebhook(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id, err := pathID(r, "webhook")
	if err != nil {
		return err
	}
	var b webhookPatchJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	h, err := hs.Update(r.Context(), a, false, id, account.WebhookPatch{URL: b.URL, EventTypes: b.EventTypes, Disabled: b.Disabled})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, webhookView(h))
	return nil
}

func (s *Server) apiDeleteWebhook(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.deleteWebhook(w, r, a, false)
}

func (s *Server) apiEnableWebhook(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.enableWebhook(w, r, a, false)
}

func (s *Server) apiWebhookDeliveries(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.webhookDeliveries(w, r, a, false)
}

func (s *Server) apiListMyWebhooks(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.listWebhooks(w, r, tokenActor(r, c), true)
}

func (s *Server) apiCreateMyWebhook(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.createWebhook(w, r, tokenActor(r, c), true, "/api/v1/me/webhooks/")
}

func (s *Server) apiGetMyWebhook(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.getWebhook(w, r, tokenActor(r, c), true)
}

func (s *Server) apiDeleteMyWebhook(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.deleteWebhook(w, r, tokenActor(r, c), true)
}

func (s *Server) apiEnableMyWebhook(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.enableWebhook(w, r, tokenActor(r, c), true)
}

func (s *Server) apiMyWebhookDeliveries(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.webhookDeliveries(w, r, tokenActor(r, c), true)
}

func (s *Server) apiRotateWebhookSecret(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	return s.rotateWebhookSecret(w, r, a, false)
}

func (s *Server) apiRotateMyWebhookSecret(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	return s.rotateWebhookSecret(w, r, tokenActor(r, c), true)
}
