package storagetest

import (
	"testing"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// pairwiseTests check that an app's subject type and sector identifier
// URI (pairwise subjects, OpenID Connect Core 1.0 §8) come back as
// stored, through an update too: the sub every app sends depends on them.
var pairwiseTests = []test{
	{"ClientSubjectType", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.SubjectType, app.SectorIdentifierURI = "pairwise", "https://sector.example/apps.json"
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got.SubjectType, "pairwise", "subject type")
		equal(t, got.SectorIdentifierURI, app.SectorIdentifierURI, "sector identifier URI")
		_, err = s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.SubjectType, c.SectorIdentifierURI = "", ""
			return c, nil
		})
		ok(t, err, "update app")
		got, err = s.GetClient(ctx, "app")
		ok(t, err, "get app again")
		equal(t, got.SubjectType+got.SectorIdentifierURI, "", "public again")
	}},
}
