package portal

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// A person's own webhooks, linked from the App access page: the same
// hooks as /api/v1/me/webhooks (every user may have them; they hear only
// the events of the user's own account), through the same
// account.WebhookService calls with own true. A new hook and a new secret
// mint a signing secret, as a new API token mints a credential: they ask
// for a recent sign-in or the password (levelRecentSignIn, as
// /security/api-tokens does); turning a hook on again, deleting it and
// reading its log need a signed-in browser, as revoking a token does.
func (s *Server) registerWebhookPages(t *routeTable) {
	t.add(levelSignedIn, "GET", "/security/webhooks", s.myWebhooksPage)
	t.add(levelRecentSignIn, "POST", "/security/webhooks", s.myWebhookCreate)
	t.add(levelSignedIn, "GET", "/security/webhooks/{id}", s.myWebhookPage)
	t.add(levelSignedIn, "POST", "/security/webhooks/{id}/enable", s.myWebhookEnable)
	t.add(levelRecentSignIn, "POST", "/security/webhooks/{id}/rotate-secret", s.myWebhookRotateSecret)
	t.add(levelSignedIn, "GET", "/security/webhooks/{id}/delete", s.myWebhookDeletePage) // asks first
	t.add(levelSignedIn, "POST", "/security/webhooks/{id}/delete", s.myWebhookDelete)
}

// ownHooksActor is the signed-in person managing their own hooks, with
// the request's address and browser for the audit log.
func ownHooksActor(r *http.Request, m me) account.Actor {
	return account.Actor{Kind: account.ActorUser, UserID: m.User.ID, IP: clientIP(r), UserAgent: r.UserAgent()}
}

type myWebhooksData struct {
	web.Base
	Hooks        []hookView
	F            hookForm
	EventTypes   []string
	NeedsConfirm bool
	Notice       string
	Error        string
	Field        string
	// One hook's page (myWebhookPage): the hook, its log and a secret
	// just made.
	Hook       *hookView
	Deliveries []deliveryView
	Secret     string
}

var myWebhookNotices = map[string]string{
	"deleted": "The webhook was deleted.",
	"enabled": "The webhook is on again; its failures were cleared.",
}

func (s *Server) myWebhooksView(r *http.Request, m me) (*myWebhooksData, error) {
	hs, err := s.webhooks()
	if err != nil {
		return nil, err
	}
	list, err := hs.List(r.Context(), ownHooksActor(r, m), true)
	if err != nil {
		return nil, err
	}
	d := &myWebhooksData{Base: s.web.Base(r, &m.User, "Webhooks"), EventTypes: account.WebhookEventTypes, F: hookForm{Types: map[string]bool{}},
		NeedsConfirm: !s.acct.SignIn.RecentlyAuthenticated(m.Session)}
	d.Nav = "access"
	for _, h := range list {
		d.Hooks = append(d.Hooks, hookView{Webhook: h})
	}
	return d, nil
}

func (s *Server) myWebhooksPage(w http.ResponseWriter, r *http.Request, m me) error {
	d, err := s.myWebhooksView(r, m)
	if err != nil {
		return err
	}
	d.Notice = myWebhookNotices[r.URL.Query().Get("done")]
	s.web.Render(w, r, http.StatusOK, "webhooks", d)
	return nil
}

// myWebhookRefused shows the list again with the form as sent and what
// was wrong with it; other errors go up.
func (s *Server) myWebhookRefused(w http.ResponseWriter, r *http.Request, m me, err error) error {
	code := account.ErrorCode(err)
	switch code {
	case account.Invalid, account.Conflict, account.Unauthorized, account.Forbidden, account.RateLimited:
	default:
		return err
	}
	d, verr := s.myWebhooksView(r, m)
	if verr != nil {
		return verr
	}
	d.F = postedHookForm(r)
	d.Error, d.Field = errorText(d.Lang, err), account.ErrorField(err)
	setRetryAfter(w, err)
	s.web.Render(w, r, statusFor(code), "webhooks", d)
	return nil
}

func (s *Server) myWebhookCreate(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	if err := s.confirmIdentity(r, m); err != nil {
		return s.myWebhookRefused(w, r, m, err)
	}
	f := postedHookForm(r)
	h, secret, err := hs.Create(r.Context(), ownHooksActor(r, m), true, account.NewWebhook{URL: f.URL, EventTypes: f.types()})
	if err != nil {
		return s.myWebhookRefused(w, r, m, err)
	}
	return s.showMyWebhook(w, r, m, h.ID, http.StatusCreated, "The webhook was created.", secret)
}

// showMyWebhook renders one of m's hooks with its delivery log; a hook
// that is not m's is not found.
func (s *Server) showMyWebhook(w http.ResponseWriter, r *http.Request, m me, id string, status int, notice string, secret string) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	a := ownHooksActor(r, m)
	h, err := hs.Get(r.Context(), a, true, id)
	if err != nil {
		return err
	}
	log, err := hs.Deliveries(r.Context(), a, true, id)
	if err != nil {
		return err
	}
	d := &myWebhooksData{Base: s.web.Base(r, &m.User, "Webhook"), Hook: &hookView{Webhook: h}, Deliveries: deliveryViews(log, m.User.Zoneinfo),
		Notice: notice, Secret: secret, NeedsConfirm: !s.acct.SignIn.RecentlyAuthenticated(m.Session)}
	d.Nav = "access"
	if secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	s.web.Render(w, r, status, "webhook", d)
	return nil
}

func (s *Server) myWebhookPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showMyWebhook(w, r, m, mux.Vars(r)["id"], http.StatusOK, myWebhookNotices[r.URL.Query().Get("done")], "")
}

func (s *Server) myWebhookEnable(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	if _, err := hs.Enable(r.Context(), ownHooksActor(r, m), true, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/security/webhooks/"+url.PathEscape(id)+"?done=enabled", http.StatusSeeOther)
	return nil
}

// myWebhookRotateSecret asks first and confirms the person (a new secret
// is a credential for whoever sees it), then shows the new secret once.
func (s *Server) myWebhookRotateSecret(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	a := ownHooksActor(r, m)
	if _, err := hs.Get(r.Context(), a, true, id); err != nil {
		return err
	}
	// It asks first, with the password when the sign-in is not recent.
	var failure error
	if confirmed(r) {
		failure = s.confirmIdentity(r, m)
	}
	if !confirmed(r) || failure != nil {
		path := "/security/webhooks/" + url.PathEscape(id)
		d := s.confirmRecentPage(r, m, "access", "Replace the signing secret?", "New secret", path+"/rotate-secret", path)
		d.Message = web.Translate(d.Lang, "The current secret stops working at once: calls are signed with the new one from now on, and the receiver refuses them until it has it.")
		s.showConfirm(w, r, d, failure)
		return nil
	}
	_, secret, err := hs.RotateSecret(r.Context(), a, true, id)
	if err != nil {
		return err
	}
	return s.showMyWebhook(w, r, m, id, http.StatusOK, "The webhook has a new signing secret. The previous one stopped working.", secret)
}

func (s *Server) myWebhookDeletePage(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	h, err := hs.Get(r.Context(), ownHooksActor(r, m), true, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	path := "/security/webhooks/" + url.PathEscape(h.ID)
	d := s.confirmPage(r, m, "access", "Delete this webhook?", "Delete webhook", path+"/delete", path)
	d.Detail = h.URL
	d.Message = web.Translate(d.Lang, "It hears no more events, its calls still waiting are dropped, and its delivery log is removed. This cannot be undone.")
	s.showConfirm(w, r, d, nil)
	return nil
}

func (s *Server) myWebhookDelete(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.myWebhookDeletePage(w, r, m)
	}
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	if err := hs.Delete(r.Context(), ownHooksActor(r, m), true, mux.Vars(r)["id"]); err != nil {
		return err
	}
	http.Redirect(w, r, "/security/webhooks?done=deleted", http.StatusSeeOther)
	return nil
}
