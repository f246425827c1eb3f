package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's webhook pages: every hook (the admins', which hear every
// user's events, and the users' own), a new admins' hook with its secret
// shown once, a hook's page (edit, turn off or on, a new secret, the
// delivery log) and deleting after a confirmation. Every change goes
// through account.WebhookService as an admin (own false), as the API's
// /api/v1/webhooks does (apiwebhooks.go), so the rules and the audit
// events are the same.
func (s *Server) registerAdminWebhookPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/webhooks", s.adminWebhooksPage)
	t.add(levelAdmin, "GET", "/admin/webhooks/new", s.adminNewWebhookPage) // before {id}
	t.add(levelAdmin, "POST", "/admin/webhooks/new", s.adminCreateWebhook)
	t.add(levelAdmin, "GET", "/admin/webhooks/{id}", s.adminWebhookPage)
	t.add(levelAdmin, "POST", "/admin/webhooks/{id}/edit", s.adminEditWebhook)
	t.add(levelAdmin, "POST", "/admin/webhooks/{id}/enable", s.adminEnableWebhook)
	t.add(levelAdmin, "POST", "/admin/webhooks/{id}/disable", s.adminDisableWebhook)
	t.add(levelAdmin, "POST", "/admin/webhooks/{id}/rotate-secret", s.adminRotateWebhookSecret) // asks first
	t.add(levelAdmin, "GET", "/admin/webhooks/{id}/delete", s.adminDeleteWebhookPage)           // asks first
	t.add(levelAdmin, "POST", "/admin/webhooks/{id}/delete", s.adminDeleteWebhook)
}

// hookForm is the webhook form's fields: the URL and the event types
// ticked (none: every event).
type hookForm struct {
	URL   string
	Types map[string]bool
}

func hookFormOf(h storage.Webhook) hookForm {
	f := hookForm{URL: h.URL, Types: map[string]bool{}}
	for _, t := range h.EventTypes {
		f.Types[t] = true
	}
	return f
}

func postedHookForm(r *http.Request) hookForm {
	f := hookForm{URL: strings.TrimSpace(r.PostFormValue("url")), Types: map[string]bool{}}
	for _, t := range r.PostForm["event_types"] {
		f.Types[t] = true
	}
	return f
}

// types lists the ticked types in the form's order; a type that is not
// one of them (a crafted form) is kept, so the rules name it.
func (f hookForm) types() []string {
	out := chosen(f.Types, account.WebhookEventTypes)
	for t := range f.Types {
		if !slices.Contains(account.WebhookEventTypes, t) {
			out = append(out, t)
		}
	}
	return out
}

// hookView is a hook as the pages list it.
type hookView struct {
	storage.Webhook
	// Owner names a user's own hook's owner ("" for an admins' hook).
	Owner string
}

// deliveryView is one attempt of a hook's delivery log.
type deliveryView struct {
	storage.WebhookDelivery
	At        string
	LatencyMS int64
}

func deliveryViews(log []storage.WebhookDelivery, tz string) []deliveryView {
	out := make([]deliveryView, 0, len(log))
	for _, d := range log {
		out = append(out, deliveryView{WebhookDelivery: d, At: showTime(d.At, tz), LatencyMS: d.Latency.Milliseconds()})
	}
	return out
}

type adminWebhooksData struct {
	web.Base
	Hooks  []hookView
	Notice string
}

// ownerName names a hook's owner for the console: the username, or the
// ID of a user that is gone.
func (s *Server) ownerName(r *http.Request, m me, id string) string {
	if id == "" {
		return ""
	}
	if u, err := s.acct.Admin.UserRecord(r.Context(), consoleActor(r, m), id); err == nil {
		return u.Username
	}
	return id
}

var webhookNotices = map[string]string{
	"deleted":  "The webhook was deleted. Its calls still waiting are dropped.",
	"saved":    "The changes were saved.",
	"enabled":  "The webhook is on again; its failures were cleared.",
	"disabled": "The webhook is off: it hears no events until it is turned on again.",
}

func (s *Server) adminWebhooksPage(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	list, err := hs.List(r.Context(), consoleActor(r, m), false)
	if err != nil {
		return err
	}
	d := &adminWebhooksData{Base: s.web.Base(r, &m.User, "Webhooks"), Notice: webhookNotices[r.URL.Query().Get("done")]}
	d.Nav, d.AdminSection = "admin", "webhooks"
	names := map[string]string{}
	for _, h := range list {
		if _, ok := names[h.OwnerUserID]; !ok {
			names[h.OwnerUserID] = s.ownerName(r, m, h.OwnerUserID)
		}
		d.Hooks = append(d.Hooks, hookView{Webhook: h, Owner: names[h.OwnerUserID]})
	}
	s.web.Render(w, r, http.StatusOK, "admin_webhooks", d)
	return nil
}

type adminWebhookData struct {
	web.Base
	New        bool
	Hook       hookView
	F          hookForm
	EventTypes []string
	Deliveries []deliveryView
	Notice     string
	Error      string
	Field      string
	// Secret is a signing secret just made, shown this once.
	Secret string
}

func (s *Server) webhookPageData(r *http.Request, m me, title string) *adminWebhookData {
	d := &adminWebhookData{Base: s.web.Base(r, &m.User, title), EventTypes: account.WebhookEventTypes}
	d.Nav, d.AdminSection = "admin", "webhooks"
	return d
}

// showAdminWebhook renders hook id's page under status; d carries what
// the action adds (a notice, an error, the form as posted, a secret).
func (s *Server) showAdminWebhook(w http.ResponseWriter, r *http.Request, m me, id string, status int, d *adminWebhookData) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	a := consoleActor(r, m)
	h, err := hs.Get(r.Context(), a, false, id)
	if err != nil {
		return err
	}
	log, err := hs.Deliveries(r.Context(), a, false, id)
	if err != nil {
		return err
	}
	base := s.webhookPageData(r, m, "Webhook")
	d.Base, d.EventTypes = base.Base, base.EventTypes
	d.Hook = hookView{Webhook: h, Owner: s.ownerName(r, m, h.OwnerUserID)}
	if d.F.Types == nil {
		d.F = hookFormOf(h)
	}
	d.Deliveries = deliveryViews(log, m.User.Zoneinfo)
	if d.Secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	s.web.Render(w, r, status, "admin_webhook", d)
	return nil
}

func (s *Server) adminWebhookPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminWebhook(w, r, m, mux.Vars(r)["id"], http.StatusOK, &adminWebhookData{Notice: webhookNotices[r.URL.Query().Get("done")]})
}

// hookRefused shows a refusal the admin can act on (bad input, too many
// hooks) on the hook's page; other errors (no such hook) go up.
func (s *Server) hookRefused(w http.ResponseWriter, r *http.Request, m me, err error, d *adminWebhookData) error {
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Conflict {
		return err
	}
	d.Error, d.Field = errorText(web.PickLanguage(r, m.User.Locale), err), account.ErrorField(err)
	return s.showAdminWebhook(w, r, m, mux.Vars(r)["id"], statusFor(code), d)
}

func (s *Server) adminNewWebhookPage(w http.ResponseWriter, r *http.Request, m me) error {
	if _, err := s.webhooks(); err != nil {
		return err
	}
	d := s.webhookPageData(r, m, "New webhook")
	d.New, d.F = true, hookForm{Types: map[string]bool{}}
	s.web.Render(w, r, http.StatusOK, "admin_webhook", d)
	return nil
}

// adminCreateWebhook registers an admins' hook and shows its page with
// the secret, this once.
func (s *Server) adminCreateWebhook(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	f := postedHookForm(r)
	h, secret, err := hs.Create(r.Context(), consoleActor(r, m), false, account.NewWebhook{URL: f.URL, EventTypes: f.types()})
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid && code != account.Conflict {
			return err
		}
		d := s.webhookPageData(r, m, "New webhook")
		d.New, d.F = true, f
		d.Error, d.Field = errorText(d.Lang, err), account.ErrorField(err)
		s.web.Render(w, r, statusFor(code), "admin_webhook", d)
		return nil
	}
	return s.showAdminWebhook(w, r, m, h.ID, http.StatusCreated, &adminWebhookData{Notice: "The webhook was created.", Secret: secret})
}

func (s *Server) adminEditWebhook(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	f := postedHookForm(r)
	types := f.types()
	if _, err := hs.Update(r.Context(), consoleActor(r, m), false, id, account.WebhookPatch{URL: &f.URL, EventTypes: &types}); err != nil {
		return s.hookRefused(w, r, m, err, &adminWebhookData{F: f})
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
	return nil
}

func (s *Server) adminEnableWebhook(w http.ResponseWriter, r *http.Request, m me) error {
	return s.adminSwitchWebhook(w, r, m, false)
}

func (s *Server) adminDisableWebhook(w http.ResponseWriter, r *http.Request, m me) error {
	return s.adminSwitchWebhook(w, r, m, true)
}

func (s *Server) adminSwitchWebhook(w http.ResponseWriter, r *http.Request, m me, off bool) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	if _, err := hs.Update(r.Context(), consoleActor(r, m), false, id, account.WebhookPatch{Disabled: &off}); err != nil {
		return s.hookRefused(w, r, m, err, &adminWebhookData{})
	}
	done := "enabled"
	if off {
		done = "disabled"
	}
	http.Redirect(w, r, "/admin/webhooks/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// adminRotateWebhookSecret asks first (the old secret stops at once, and
// the receiver refuses calls until it has the new one), then shows the
// new secret once on the hook's page.
func (s *Server) adminRotateWebhookSecret(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	a := consoleActor(r, m)
	if !confirmed(r) {
		h, err := hs.Get(r.Context(), a, false, id)
		if err != nil {
			return err
		}
		path := "/admin/webhooks/" + url.PathEscape(h.ID)
		d := s.confirmPage(r, m, "admin", "Replace the signing secret?", "New secret", path+"/rotate-secret", path)
		d.AdminSection = "webhooks"
		d.Detail = h.URL
		d.Message = web.Translate(d.Lang, "The current secret stops working at once: calls are signed with the new one from now on, and the receiver refuses them until it has it.")
		s.showConfirm(w, r, d, nil)
		return nil
	}
	_, secret, err := hs.RotateSecret(r.Context(), a, false, id)
	if err != nil {
		return err
	}
	return s.showAdminWebhook(w, r, m, id, http.StatusOK, &adminWebhookData{Notice: "The webhook has a new signing secret. The previous one stopped working.", Secret: secret})
}

func (s *Server) adminDeleteWebhookPage(w http.ResponseWriter, r *http.Request, m me) error {
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	h, err := hs.Get(r.Context(), consoleActor(r, m), false, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	path := "/admin/webhooks/" + url.PathEscape(h.ID)
	d := s.confirmPage(r, m, "admin", "Delete this webhook?", "Delete webhook", path+"/delete", path)
	d.AdminSection = "webhooks"
	d.Detail = h.URL
	d.Message = web.Translate(d.Lang, "It hears no more events, its calls still waiting are dropped, and its delivery log is removed. This cannot be undone.")
	s.showConfirm(w, r, d, nil)
	return nil
}

func (s *Server) adminDeleteWebhook(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminDeleteWebhookPage(w, r, m)
	}
	hs, err := s.webhooks()
	if err != nil {
		return err
	}
	if err := hs.Delete(r.Context(), consoleActor(r, m), false, mux.Vars(r)["id"]); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/webhooks?done=deleted", http.StatusSeeOther)
	return nil
}
