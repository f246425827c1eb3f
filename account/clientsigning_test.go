package account_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// An app's ID-token signing algorithm: one of RS256, ES256, EdDSA or ""
// (the default), checked at registration and on edits, which name the
// field and change nothing when refused; a change is audited and asks
// for the algorithm's key after it was stored; an edit that leaves the
// algorithm asks for nothing.
func TestClientSigningAlgorithm(t *testing.T) {
	f := newClientFixture(t)
	ctx := t.Context()
	var asked []string
	f.svc.Clients.SetSigningKeys(func(_ context.Context, alg string) error {
		asked = append(asked, alg)
		return nil
	})
	for _, bad := range []string{"HS256", "none", "es256", "RS512", "PS256"} {
		_, _, err := f.svc.Clients.RegisterClient(ctx, adminActor, account.NewClient{ID: "x-" + bad, RedirectURIs: []string{"https://x.example/cb"}, IDTokenSignedResponseAlg: bad})
		var ae *account.Error
		if !errors.As(err, &ae) || ae.Field != "id_token_signed_response_alg" {
			t.Errorf("register with %q: %v", bad, err)
		}
		if _, err := f.db.GetClient(ctx, "x-"+bad); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("the app with %q was stored: %v", bad, err)
		}
		_, etag := f.stored(t)
		_, _, err = f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{IDTokenSignedResponseAlg: &bad})
		if !errors.As(err, &ae) || ae.Field != "id_token_signed_response_alg" {
			t.Errorf("update to %q: %v", bad, err)
		}
		if _, after := f.stored(t); after != etag {
			t.Errorf("the refused update to %q changed the app", bad)
		}
	}
	if len(asked) != 0 {
		t.Fatalf("keys asked for refused algorithms: %v", asked)
	}

	if _, _, err := f.svc.Clients.RegisterClient(ctx, adminActor, account.NewClient{ID: "ed", RedirectURIs: []string{"https://ed.example/cb"}, IDTokenSignedResponseAlg: "EdDSA"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{IDTokenSignedResponseAlg: ptr("ES256")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{Name: ptr("Wiki 2")}); err != nil {
		t.Fatal(err)
	}
	// The name edit leaves ES256 in force and asks again: harmless
	// (EnsureAlgorithm finds the key in memory), and the rule stays simple.
	if !slices.Equal(asked, []string{"EdDSA", "ES256", "ES256"}) {
		t.Errorf("keys asked for %v, want [EdDSA ES256 ES256]", asked)
	}
	if c, _ := f.stored(t); c.IDTokenSignedResponseAlg != "ES256" {
		t.Errorf("stored algorithm %q", c.IDTokenSignedResponseAlg)
	}
	evs := f.events(t, account.AuditClientUpdated)
	found := false
	for _, e := range evs {
		for _, c := range e.Changes {
			if c.Field == "id_token_signed_response_alg" {
				found = c.Before == "" && c.After == "ES256"
			}
		}
	}
	if !found {
		t.Errorf("no audited change of id_token_signed_response_alg from \"\" to ES256: %+v", evs)
	}
	if got := account.ClientSigningAlgorithms([]storage.Client{{IDTokenSignedResponseAlg: "ES256"}, {}, {IDTokenSignedResponseAlg: "EdDSA"}, {IDTokenSignedResponseAlg: "ES256"}}); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
		t.Errorf("ClientSigningAlgorithms: %v", got)
	}
}
