package bolt

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// TestClientMemo: a client read again comes from the memo only while its
// stored bytes are unchanged: an update, a delete and a re-creation are
// seen at once, and a caller changing the lists it got changes nothing
// for the next reader.
func TestClientMemo(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "k.db"), Options{})
	ctx := context.Background()
	c := storage.Client{ID: "app", RedirectURIs: []string{"https://a.example/cb"}, CreatedAt: time.Now().UTC()}
	if err := d.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetClient(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	// The second read is a hit: the memo answers for the stored bytes.
	err = d.db.View(func(tx *bbolt.Tx) error {
		if _, ok := d.memos.clients.get("app", tx.Bucket(bClients).Get([]byte("app"))); !ok {
			t.Error("the memo does not answer for the unchanged client")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got.RedirectURIs[0] = "https://evil.example/cb"
	if again, _ := d.GetClient(ctx, "app"); again.RedirectURIs[0] != "https://a.example/cb" {
		t.Errorf("a caller's change reached the next reader: %v", again.RedirectURIs)
	}
	if d.memos.clients.size() != 1 {
		t.Errorf("memo holds %d clients, want 1", d.memos.clients.size())
	}

	if _, err := d.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
		c.RedirectURIs = append(c.RedirectURIs, "https://b.example/cb")
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.GetClient(ctx, "app"); !slices.Equal(again.RedirectURIs, []string{"https://a.example/cb", "https://b.example/cb"}) {
		t.Errorf("after an update: %v", again.RedirectURIs)
	}
	if err := d.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.GetClient(ctx, "app"); err == nil {
		t.Error("a deleted client is still read")
	}
	c.RedirectURIs = []string{"https://c.example/cb"}
	if err := d.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.GetClient(ctx, "app"); !slices.Equal(again.RedirectURIs, c.RedirectURIs) {
		t.Errorf("after a re-creation: %v", again.RedirectURIs)
	}
	// Unknown IDs are not kept.
	for _, id := range []string{"x", "y", "z"} {
		if _, err := d.GetClient(ctx, id); err == nil {
			t.Fatalf("client %q found", id)
		}
	}
	if d.memos.clients.size() != 1 {
		t.Errorf("memo holds %d clients after reads of unknown IDs, want 1", d.memos.clients.size())
	}
}
