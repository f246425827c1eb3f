package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

var webhookTests = []test{
	{"CreateGetListDelete", testWebhookCRUD},
	{"UpdateKeepsIdentity", testWebhookUpdate},
	{"DeliveryLogIsBounded", testWebhookDeliveryLog},
	{"DeletedUserTakesTheirHooks", testWebhookDeletedUser},
}

func newWebhook(id, owner string, at time.Time) storage.Webhook {
	return storage.Webhook{ID: id, OwnerUserID: owner, URL: "https://hooks.example/" + id, SealedSecret: []byte("sealed-" + id), CreatedAt: at, UpdatedAt: at}
}

func webhookIDs(ws []storage.Webhook) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

func testWebhookCRUD(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	a := newWebhook("wa", "", clock.Now())
	a.EventTypes = []string{"user.created"}
	ok(t, s.CreateWebhook(ctx, a), "create wa")
	ok(t, s.CreateWebhook(ctx, newWebhook("wb", "u1", advance(clock, time.Second))), "create wb")
	ok(t, s.CreateWebhook(ctx, newWebhook("wc", "u1", advance(clock, time.Second))), "create wc")
	ok(t, s.CreateWebhook(ctx, newWebhook("wd", "u2", advance(clock, time.Second))), "create wd")
	isErr(t, s.CreateWebhook(ctx, newWebhook("wa", "u3", clock.Now())), storage.ErrConflict, "create taken ID")

	got, err := s.GetWebhook(ctx, "wa")
	ok(t, err, "get wa")
	equal(t, got, a, "get wa")
	all, err := s.ListWebhooks(ctx)
	ok(t, err, "list")
	equal(t, webhookIDs(all), []string{"wa", "wb", "wc", "wd"}, "list all, oldest first")
	for owner, want := range map[string][]string{"": {"wa"}, "u1": {"wb", "wc"}, "u2": {"wd"}, "u": {}} {
		ws, err := s.ListWebhooksOf(ctx, owner)
		ok(t, err, "list of %q", owner)
		equal(t, webhookIDs(ws), want, "list of %q", owner)
	}

	ok(t, s.DeleteWebhook(ctx, "wb"), "delete wb")
	isErr(t, s.DeleteWebhook(ctx, "wb"), storage.ErrNotFound, "delete wb again")
	_, err = s.GetWebhook(ctx, "wb")
	isErr(t, err, storage.ErrNotFound, "get deleted")
	ws, err := s.ListWebhooksOf(ctx, "u1")
	ok(t, err, "list of u1")
	equal(t, webhookIDs(ws), []string{"wc"}, "list of u1 after delete")
	_, err = s.ListWebhookDeliveries(ctx, "wb")
	isErr(t, err, storage.ErrNotFound, "deliveries of deleted")
}

func testWebhookUpdate(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	w := newWebhook("w1", "u1", clock.Now())
	ok(t, s.CreateWebhook(ctx, w), "create")
	later := advance(clock, time.Minute)
	got, err := s.UpdateWebhook(ctx, "w1", func(h *storage.Webhook) error {
		h.ID, h.OwnerUserID, h.CreatedAt = "other", "u2", later // ignored
		h.URL, h.Disabled, h.DisabledReason, h.UpdatedAt = "https://new.example/", true, "too many failures", later
		return nil
	})
	ok(t, err, "update")
	want := w
	want.URL, want.Disabled, want.DisabledReason, want.UpdatedAt = "https://new.example/", true, "too many failures", later
	equal(t, got, want, "update result")
	stored, err := s.GetWebhook(ctx, "w1")
	ok(t, err, "get")
	equal(t, stored, want, "stored")

	refuse := errors.New("refused")
	_, err = s.UpdateWebhook(ctx, "w1", func(h *storage.Webhook) error { h.URL = "https://x.example/"; return refuse })
	isErr(t, err, refuse, "fn's error")
	stored, err = s.GetWebhook(ctx, "w1")
	ok(t, err, "get")
	equal(t, stored, want, "a refused update changes nothing")
	_, err = s.UpdateWebhook(ctx, "nope", func(*storage.Webhook) error { return nil })
	isErr(t, err, storage.ErrNotFound, "update missing")
}

func testWebhookDeliveryLog(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.CreateWebhook(ctx, newWebhook("w1", "", clock.Now())), "create w1")
	ok(t, s.CreateWebhook(ctx, newWebhook("w10", "", clock.Now())), "create w10")
	_, err := s.RecordWebhookDelivery(ctx, "w10", storage.WebhookDelivery{MessageID: "other", At: clock.Now()}, nil)
	ok(t, err, "record w10")
	n := storage.MaxWebhookDeliveries + 5
	for i := range n {
		d := storage.WebhookDelivery{MessageID: fmt.Sprintf("m%02d", i), EventType: "user.created", At: advance(clock, time.Second), Attempt: 1, Status: 500, Latency: time.Millisecond, Error: "HTTP 500"}
		w, err := s.RecordWebhookDelivery(ctx, "w1", d, func(h *storage.Webhook) error { h.ConsecutiveFailures++; return nil })
		ok(t, err, "record %d", i)
		equal(t, w.ConsecutiveFailures, i+1, "failures after record %d", i)
	}
	log, err := s.ListWebhookDeliveries(ctx, "w1")
	ok(t, err, "list deliveries")
	equal(t, len(log), storage.MaxWebhookDeliveries, "log length")
	equal(t, log[0].MessageID, fmt.Sprintf("m%02d", n-1), "newest first")
	equal(t, log[len(log)-1].MessageID, fmt.Sprintf("m%02d", n-storage.MaxWebhookDeliveries), "oldest kept")
	equal(t, log[0].Status, 500, "status kept")
	other, err := s.ListWebhookDeliveries(ctx, "w10")
	ok(t, err, "list w10")
	equal(t, len(other), 1, "another hook's log is its own")

	refuse := errors.New("refused")
	_, err = s.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "x", At: clock.Now()}, func(*storage.Webhook) error { return refuse })
	isErr(t, err, refuse, "refused record")
	log, _ = s.ListWebhookDeliveries(ctx, "w1")
	equal(t, log[0].MessageID, fmt.Sprintf("m%02d", n-1), "a refused record logs nothing")
	_, err = s.RecordWebhookDelivery(ctx, "gone", storage.WebhookDelivery{MessageID: "x"}, nil)
	isErr(t, err, storage.ErrNotFound, "record for a missing hook")
}

// testWebhookDeletedUser: deleting a user deletes the hooks they
// registered for their own account, and no one else's.
func testWebhookDeletedUser(t *testing.T, s storage.Store, c *testclock.Clock) {
	ctx, now := t.Context(), c.Now()
	ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
	ok(t, s.CreateUser(ctx, newUser("u10", "bob", "bob@example.com")), "create bob")
	for _, w := range []storage.Webhook{
		{ID: "mine", OwnerUserID: "u1", URL: "https://a.example/", CreatedAt: now},
		{ID: "bobs", OwnerUserID: "u10", URL: "https://b.example/", CreatedAt: now},
		{ID: "admins", URL: "https://c.example/", CreatedAt: now},
	} {
		ok(t, s.CreateWebhook(ctx, w), "create %s", w.ID)
	}
	_, err := s.RecordWebhookDelivery(ctx, "mine", storage.WebhookDelivery{MessageID: "m1", At: now}, nil)
	ok(t, err, "record a delivery")
	ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete alice")
	_, err = s.GetWebhook(ctx, "mine")
	isErr(t, err, storage.ErrNotFound, "alice's hook")
	all, err := s.ListWebhooks(ctx)
	ok(t, err, "list")
	ids := []string{}
	for _, w := range all {
		ids = append(ids, w.ID)
	}
	slices.Sort(ids)
	equal(t, ids, []string{"admins", "bobs"}, "hooks left")
}
