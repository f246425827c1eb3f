package account_test

import (
	"context"
	"slices"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// A reactor's messages are committed with the event that caused them: an
// admin's action (core.audit), a sign-in (RecordSignIn) and a consent
// (PutGrant) alike.
func TestReactorsQueueWithTheirEvent(t *testing.T) {
	f := newAdminFixture(t)
	var n int
	f.svc.AddReactor(func(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
		n++
		return []storage.OutboxMessage{{ID: account.NewOrderedID(), Kind: "test", Payload: []byte(e.Type), CreatedAt: e.Time}}
	})
	bob := f.user("bob", false)
	if _, err := f.svc.Admin.BlockUser(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Admin.UnblockUser(f.ctx, f.actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "bob", Password: adminTestPassword, IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	msgs, _, err := f.db.ListOutbox(f.ctx, storage.OutboxQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, m := range msgs {
		types = append(types, string(m.Payload))
	}
	for _, want := range []string{"user.blocked", "user.unblocked", account.EventSignInSucceeded} {
		if !slices.Contains(types, want) {
			t.Errorf("no message for %s in %v (the reactor ran %d times)", want, types, n)
		}
	}
}
