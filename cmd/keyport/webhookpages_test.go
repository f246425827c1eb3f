package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// verifyStandardWebhook is a receiver's check of the Standard Webhooks
// headers as the specification describes it (the key is the base64 after
// "whsec_"; the signed content "id.timestamp.body"; the header a list of
// "v1,<base64>"), written here and not taken from our signing code.
func verifyStandardWebhook(secret string, c hookCall, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return errors.New("the secret is not whsec_ and standard base64")
	}
	id, ts := c.Header.Get("webhook-id"), c.Header.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute || id == "" {
		return errors.New("bad webhook-id or webhook-timestamp")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(c.Body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(c.Header.Get("webhook-signature")) {
		v, sig, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(sig)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no webhook-signature matches")
}

// verifyBoth checks a call's two signatures with secret, each on its own.
func verifyBoth(t *testing.T, secret string, c hookCall, now time.Time) {
	t.Helper()
	if err := verifyStandardWebhook(secret, c, now); err != nil {
		t.Errorf("Standard Webhooks: %v (%v)", err, c.Header)
	}
	if err := webhook.Verify([]byte(secret), c.Header.Get("Keyport-Signature"), c.Body, now, time.Minute); err != nil {
		t.Errorf("Keyport-Signature: %v", err)
	}
}

// waitForDelivery waits until hook id's delivery log has an entry that
// ok accepts, and returns it.
func waitForDelivery(t *testing.T, srv *testServer, id string, ok func(storage.WebhookDelivery) bool) storage.WebhookDelivery {
	t.Helper()
	for range 200 {
		log, err := srv.Main.Store.ListWebhookDeliveries(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(log, ok); i >= 0 {
			return log[i]
		}
		srv.Main.Outbox.Notify()
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("webhook %s: no such delivery in its log", id)
	return storage.WebhookDelivery{}
}

// The webhook pages, on one server: the console's for admins, a person's
// own under /security/webhooks, and a blocked owner's hooks.
func TestWebhookPages(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: allowLoopbackHooks})
	root := srv.createUser("root", true)
	alice := srv.createUser("alice", false)
	ctx := context.Background()
	admin := account.Actor{Kind: account.ActorUser, UserID: root.ID}
	hooks := func() []storage.Webhook {
		all, err := srv.Main.Store.ListWebhooks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	rename := func(id, name string) {
		if _, _, err := srv.Main.Accounts.Admin.UpdateUser(ctx, admin, id, "", account.UserPatch{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	invite := func(name string) { // a user.created event
		if _, _, err := srv.Main.Accounts.Admin.CreateUser(ctx, admin, account.AdminNewUser{Username: name, Email: name + "@example.com", Invite: true}); err != nil {
			t.Fatal(err)
		}
	}
	var adminHook string

	// List, create (bad input refused first, then the secret once), the
	// delivery log, edit, off and on, a new secret, delete: each through
	// the console's forms as a signed-in admin.
	t.Run("console", func(t *testing.T) {
		b := newBrowser(t)
		signInPortal(t, srv, b, "root")
		list := b.get(srv.URL + "/admin/webhooks")
		if list.Status != http.StatusOK || !strings.Contains(list.Body, "No webhooks yet.") {
			t.Fatalf("empty list: %d\n%s", list.Status, truncateBody(list.Body))
		}
		if _, ok := parsePage(t, list.Body).first("a", "href", "/admin/webhooks"); !ok {
			t.Error("the console's menu has no Webhooks entry")
		}
		rc := newHookReceiver(t)
		newPage := b.get(srv.URL + "/admin/webhooks/new")
		for name, form := range map[string]url.Values{
			"not a URL":                {"url": {"hooks example"}},
			"http:// to a public host": {"url": {"http://hooks.example.com/in"}},
			"a private address":        {"url": {"https://10.0.0.1/in"}},
			"an unknown event type":    {"url": {"https://hooks.example.com/in"}, "event_types": {"user.created", "user.renamed_twice"}},
			"a malformed event type":   {"url": {"https://hooks.example.com/in"}, "event_types": {"User Created"}},
		} {
			p := submitForm(t, b, newPage, "/admin/webhooks/new", form)
			msg, _ := textByID(t, p.Body, "form-error")
			if p.Status != http.StatusBadRequest || msg == "" {
				t.Errorf("%s: %d %q", name, p.Status, msg)
			}
			if n := len(hooks()); n != 0 {
				t.Fatalf("%s: %d webhooks stored", name, n)
			}
		}
		if p := b.post(srv.URL+"/admin/webhooks/new", url.Values{"url": {rc.URL + "/in"}}); p.Status != http.StatusForbidden || len(hooks()) != 0 {
			t.Fatalf("a form without its CSRF token: %d, %d stored", p.Status, len(hooks()))
		}
		created := submitForm(t, b, newPage, "/admin/webhooks/new", url.Values{"url": {rc.URL + "/in"}, "event_types": {"user.created", "user.updated"}})
		secret, ok := textByID(t, created.Body, "new-secret")
		if created.Status != http.StatusCreated || !ok || !strings.HasPrefix(secret, "whsec_") || created.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("create: %d %q\n%s", created.Status, secret, truncateBody(created.Body))
		}
		all := hooks()
		if len(all) != 1 || all[0].OwnerUserID != "" || strings.Join(all[0].EventTypes, ",") != "user.created,user.updated" {
			t.Fatalf("stored: %+v", all)
		}
		adminHook = all[0].ID
		hookURL := srv.URL + "/admin/webhooks/" + adminHook
		if again := b.get(hookURL); again.Status != http.StatusOK || strings.Contains(again.Body, secret) {
			t.Errorf("the hook's page again: %d, shows the secret %v", again.Status, strings.Contains(again.Body, secret))
		}
		events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.EventWebhookCreated}, Limit: 10})
		if err != nil || len(events) != 1 || events[0].ActorID != root.ID || events[0].TargetID != adminHook {
			t.Errorf("audit of the creation: %+v %v", events, err)
		}

		// An event arrives signed both ways; the page logs the attempt.
		invite("bob")
		call := rc.next(t, srv)
		if call.Event.Type != "user.created" {
			t.Fatalf("first call: %s", call.Body)
		}
		verifyBoth(t, secret, call, clock.Now())
		waitForDelivery(t, srv, adminHook, func(d storage.WebhookDelivery) bool { return d.Status == 200 })
		logged, _ := parsePage(t, b.get(hookURL).Body).byID("deliveries")
		if row := logged.text(); !strings.Contains(row, "user.created") || !strings.Contains(row, call.Event.ID) || !strings.Contains(row, "200") {
			t.Errorf("delivery log on the page: %q", row)
		}
		listed, _ := parsePage(t, b.get(srv.URL+"/admin/webhooks").Body).byID("webhooks")
		if text := listed.text(); !strings.Contains(text, rc.URL+"/in") || !strings.Contains(text, "user.created, user.updated") || !strings.Contains(text, "Administrators") {
			t.Errorf("the list: %q", text)
		}

		// Edit; a refused edit changes nothing.
		saved := submitForm(t, b, b.get(hookURL), "/admin/webhooks/"+adminHook+"/edit", url.Values{"event_types": {"user.created", "user.blocked"}})
		if saved.Status != http.StatusOK || notice(t, saved) != "The changes were saved." {
			t.Fatalf("save: %d %s", saved.Status, truncateBody(saved.Body))
		}
		for name, form := range map[string]url.Values{
			"http:// to a public host": {"url": {"http://hooks.example.com/in"}},
			"an unknown event type":    {"event_types": {"user.exploded"}},
		} {
			p := submitForm(t, b, b.get(hookURL), "/admin/webhooks/"+adminHook+"/edit", form)
			if h := hooks()[0]; p.Status != http.StatusBadRequest || h.URL != rc.URL+"/in" || strings.Join(h.EventTypes, ",") != "user.created,user.blocked" {
				t.Errorf("edit with %s: %d, stored %+v", name, p.Status, h)
			}
		}

		// Off, with the reason listed; on again.
		off := submitForm(t, b, b.get(hookURL), "/admin/webhooks/"+adminHook+"/disable", nil)
		if reason, _ := textByID(t, off.Body, "disabled-reason"); !strings.Contains(reason, "Turned off by its owner.") || !hooks()[0].Disabled {
			t.Errorf("turned off: %d %q", off.Status, reason)
		}
		on := submitForm(t, b, off, "/admin/webhooks/"+adminHook+"/enable", nil)
		if h := hooks()[0]; on.Status != http.StatusOK || h.Disabled || h.ConsecutiveFailures != 0 {
			t.Errorf("turned on: %d %+v", on.Status, h)
		}

		// A new secret asks first; then the calls verify with it only.
		ask := submitForm(t, b, b.get(hookURL), "/admin/webhooks/"+adminHook+"/rotate-secret", nil)
		if _, shown := textByID(t, ask.Body, "new-secret"); shown || !strings.Contains(ask.Body, "Replace the signing secret?") {
			t.Fatalf("rotate did not ask first: %d\n%s", ask.Status, truncateBody(ask.Body))
		}
		rotated := submitForm(t, b, ask, "/admin/webhooks/"+adminHook+"/rotate-secret", nil)
		fresh, ok := textByID(t, rotated.Body, "new-secret")
		if !ok || fresh == secret || rotated.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("rotated: %d %v\n%s", rotated.Status, ok, truncateBody(rotated.Body))
		}
		invite("carol")
		next := rc.next(t, srv)
		verifyBoth(t, fresh, next, clock.Now())
		if verifyStandardWebhook(secret, next, clock.Now()) == nil {
			t.Error("the replaced secret still verifies")
		}

		// The API's rotation, the same service call: its secret in the
		// answer, the page's no longer.
		tok, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, root, account.NewAPIToken{Name: "hooks", Scope: account.ScopeReadWrite})
		if err != nil {
			t.Fatal(err)
		}
		status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/webhooks/"+adminHook+"/rotate-secret", tok, "", "")
		apiSecret, _ := out["secret"].(string)
		if status != http.StatusOK || !strings.HasPrefix(apiSecret, "whsec_") || apiSecret == fresh {
			t.Fatalf("rotate through the API: %d %v", status, out)
		}
		invite("dan")
		verifyBoth(t, apiSecret, rc.next(t, srv), clock.Now())
		if rotations, _, _ := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.EventWebhookSecretRotated}, Limit: 10}); len(rotations) != 2 {
			t.Errorf("audit of the rotations: %+v", rotations)
		}

		// A hook that does not exist: a clear 404 page, for every route.
		for _, p := range []page{b.get(srv.URL + "/admin/webhooks/wh_missing"), b.submit(b.get(hookURL), "/admin/webhooks/wh_missing/enable", nil),
			b.submit(b.get(hookURL), "/admin/webhooks/wh_missing/delete", url.Values{"confirm": {"yes"}})} {
			if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "No such webhook.") {
				t.Errorf("%s: %d", p.URL.Path, p.Status)
			}
		}
	})

	// A person's own hooks: bad input refused, the secret once, another's
	// hook not found, the log, delete after asking.
	t.Run("own", func(t *testing.T) {
		if adminHook == "" {
			t.Skip("the console test made no hook")
		}
		b := newBrowser(t)
		signInPortal(t, srv, b, "alice")
		if _, ok := parsePage(t, b.get(srv.URL+"/security/access").Body).first("a", "href", "/security/webhooks"); !ok {
			t.Error("the App access page does not link to the webhooks")
		}
		rc := newHookReceiver(t)
		listPage := b.get(srv.URL + "/security/webhooks")
		mine := func() []storage.Webhook {
			hs, err := srv.Main.Store.ListWebhooksOf(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			return hs
		}
		for name, form := range map[string]url.Values{
			"not a URL":                {"url": {"ftp://hooks.example.com/in"}},
			"http:// to a public host": {"url": {"http://hooks.example.com/in"}},
			"an unknown event type":    {"url": {"https://hooks.example.com/in"}, "event_types": {"user.teleported"}},
		} {
			p := submitForm(t, b, listPage, "/security/webhooks", form)
			msg, _ := textByID(t, p.Body, "form-error")
			if p.Status != http.StatusBadRequest || msg == "" || len(mine()) != 0 {
				t.Errorf("%s: %d %q, stored %d", name, p.Status, msg, len(mine()))
			}
		}
		created := submitForm(t, b, listPage, "/security/webhooks", url.Values{"url": {rc.URL + "/mine"}})
		secret, ok := textByID(t, created.Body, "new-secret")
		if created.Status != http.StatusCreated || !ok || created.Header.Get("Cache-Control") != "no-store" || len(mine()) != 1 {
			t.Fatalf("create: %d\n%s", created.Status, truncateBody(created.Body))
		}
		id := mine()[0].ID

		// Another's hook (the admins') is not found and stays as it was.
		before := hooks()
		for _, p := range []page{b.get(srv.URL + "/security/webhooks/" + adminHook), b.submit(listPage, "/security/webhooks/"+adminHook+"/enable", nil),
			b.submit(listPage, "/security/webhooks/"+adminHook+"/delete", url.Values{"confirm": {"yes"}}),
			b.submit(listPage, "/security/webhooks/"+adminHook+"/rotate-secret", url.Values{"confirm": {"yes"}})} {
			if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "No such webhook.") {
				t.Errorf("alice at %s: %d", p.URL.Path, p.Status)
			}
		}
		if after := hooks(); len(after) != len(before) || string(after[0].SealedSecret) != string(before[0].SealedSecret) {
			t.Error("alice changed the admins' hook")
		}

		// Her event arrives, signed, and her page logs it.
		rename(alice.ID, "Alice A.")
		call := rc.next(t, srv)
		if call.Event.Subject != alice.ID {
			t.Fatalf("alice's hook: %s", call.Body)
		}
		verifyBoth(t, secret, call, clock.Now())
		waitForDelivery(t, srv, id, func(d storage.WebhookDelivery) bool { return d.Status == 200 })
		hookPage := b.get(srv.URL + "/security/webhooks/" + id)
		if logged, _ := parsePage(t, hookPage.Body).byID("deliveries"); !strings.Contains(logged.text(), call.Event.ID) {
			t.Errorf("her delivery log: %q", logged.text())
		}

		// Delete asks first.
		exists := func() bool { return len(mine()) == 1 }
		confirm := askFirst(t, b, hookPage, "/security/webhooks/"+id+"/delete", "/security/webhooks/"+id+"/delete", url.Values{}, exists)
		done := submitForm(t, b, confirm, "/security/webhooks/"+id+"/delete", nil)
		if exists() || notice(t, done) != "The webhook was deleted." {
			t.Errorf("after the confirmed delete: exists %v, %q", exists(), notice(t, done))
		}
	})

	// A blocked person's hooks hear nothing: a call queued before the
	// block is dropped with the reason in the log (the receiver is not
	// called), the events while blocked are not queued, and after the
	// unblocking the events arrive again.
	t.Run("blocked owner", func(t *testing.T) {
		dave := srv.createUser("dave", false)
		rc := newHookReceiver(t, http.StatusInternalServerError) // the first call fails: it is retried
		daveActor := account.Actor{Kind: account.ActorUser, UserID: dave.ID}
		h, _, err := srv.Main.Accounts.Webhooks.Create(ctx, daveActor, true, account.NewWebhook{URL: rc.URL + "/dave", EventTypes: []string{"user.updated", "user.unblocked"}})
		if err != nil {
			t.Fatal(err)
		}
		rename(dave.ID, "Dave 1")
		first := rc.next(t, srv)
		waitRetried(t, srv, first.Event.ID)
		if _, err := srv.Main.Accounts.Admin.BlockUser(ctx, admin, dave.ID); err != nil {
			t.Fatal(err)
		}
		rename(dave.ID, "Dave 2")  // while blocked
		clock.Add(2 * time.Minute) // the retry comes due
		dropped := waitForDelivery(t, srv, h.ID, func(d storage.WebhookDelivery) bool { return d.Attempt == 2 })
		if dropped.Error != "Not sent: the owner's account is blocked." || dropped.Status != 0 || dropped.EventID != first.Event.ID {
			t.Errorf("the retry while blocked: %+v", dropped)
		}
		if got, _ := srv.Main.Store.GetWebhook(ctx, h.ID); got.Disabled || got.ConsecutiveFailures != 1 {
			t.Errorf("the drop counted as the receiver's failure: %+v", got)
		}
		queued, _, err := srv.Main.Store.ListOutbox(ctx, storage.OutboxQuery{State: storage.OutboxPending, Kind: account.OutboxWebhook, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range queued {
			if strings.Contains(string(m.Payload), h.ID) {
				t.Errorf("a call for the blocked owner's hook is queued: %s", m.Payload)
			}
		}
		select {
		case c := <-rc.calls:
			t.Fatalf("the blocked owner's receiver was called: %s", c.Body)
		default:
		}
		// The owner cannot sign in while blocked; the console shows the log.
		b := newBrowser(t)
		signInPortal(t, srv, b, "root")
		if logged, _ := parsePage(t, b.get(srv.URL+"/admin/webhooks/"+h.ID).Body).byID("deliveries"); !strings.Contains(logged.text(), "Not sent: the owner's account is blocked.") {
			t.Errorf("the console's log of dave's hook: %q", logged.text())
		}

		if err := srv.Main.Accounts.Admin.UnblockUser(ctx, admin, dave.ID); err != nil {
			t.Fatal(err)
		}
		back := rc.next(t, srv)
		if back.Event.Type != "user.unblocked" || back.Event.Subject != dave.ID {
			t.Fatalf("after the unblocking: %s", back.Body)
		}
		rename(dave.ID, "Dave 3")
		if again := rc.next(t, srv); again.Event.Type != "user.updated" || again.Event.ID == first.Event.ID {
			t.Errorf("the next event: %s", again.Body)
		}
	})
}
