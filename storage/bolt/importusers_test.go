package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// TestListUsersPage: the pages, read one after another, are ListUsers.
func TestListUsersPage(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "k.db"), Options{})
	var batch []storage.User
	for i := range 25 {
		// Mixed case and IDs out of username order.
		name := fmt.Sprintf("User%02d", (i*7)%25)
		if i%2 == 0 {
			name = fmt.Sprintf("user%02d", (i*7)%25)
		}
		batch = append(batch, storage.User{ID: fmt.Sprintf("id-%02d", i), Username: name, CreatedAt: time.Unix(0, 0).UTC(), UpdatedAt: time.Unix(0, 0).UTC()})
	}
	if err := d.CreateUsers(ctx, batch); err != nil {
		t.Fatal(err)
	}
	all, err := d.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paged []storage.User
	pages := 0
	for after := ""; ; pages++ {
		page, err := d.ListUsersPage(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = strings.ToLower(page[len(page)-1].Username)
	}
	if pages != 3 || !reflect.DeepEqual(paged, all) || len(all) != 25 {
		t.Fatalf("%d pages of %d users; ListUsers has %d; equal: %v", pages, len(paged), len(all), reflect.DeepEqual(paged, all))
	}
	if _, err := d.ListUsersPage(ctx, "", 0); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("limit 0: %v", err)
	}
}
