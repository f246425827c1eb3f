package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
)

// SearchUsers returns a page of the users q selects (storage.UserQuery:
// text search, filters, sort, cursor), for the console's list and the
// API's. Bad input is Invalid naming the field ("q", "sort", "cursor",
// "limit", "group").
func (s *AdminService) SearchUsers(ctx context.Context, actor Actor, q storage.UserQuery) (storage.UserPage, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return storage.UserPage{}, err
	}
	switch {
	case len(q.Search) > storage.MaxUserSearch:
		return storage.UserPage{}, FieldErrorf("q", "The search is longer than %d bytes.", storage.MaxUserSearch)
	case len(q.Group) > storage.MaxUserSearch:
		return storage.UserPage{}, FieldErrorf("group", "The group name is longer than %d bytes.", storage.MaxUserSearch)
	case q.Sort != "" && q.Sort != storage.UserSortCreated && q.Sort != storage.UserSortLastSignIn:
		return storage.UserPage{}, FieldErrorf("sort", "Sort by %q or %q.", storage.UserSortCreated, storage.UserSortLastSignIn)
	case q.Limit < 0 || q.Limit > storage.MaxUserLimit:
		return storage.UserPage{}, FieldErrorf("limit", "The page size must be between 1 and %d.", storage.MaxUserLimit)
	}
	page, err := s.store.SearchUsers(ctx, q)
	if errors.Is(err, storage.ErrInvalid) {
		// The checks above leave the cursor, and a NUL in the text.
		field := "cursor"
		if q.Cursor == "" {
			field = "q"
		}
		return storage.UserPage{}, &Error{Code: Invalid, Field: field, Message: "The search or its cursor is not valid. Start again from the first page.", Err: err}
	}
	if err != nil {
		return storage.UserPage{}, fmt.Errorf("search users: %w", err)
	}
	return page, nil
}

// nameTaken turns a store's refusal of a taken or reserved username or
// email into a Conflict naming the field; fallback names it when the store
// does not say.
func nameTaken(err error, fallback string) *Error {
	var nc *storage.NameConflict
	if !errors.As(err, &nc) {
		return &Error{Code: Conflict, Field: fallback, Message: "Another account already has this username or email address.", Err: err}
	}
	e := Errorf(Conflict, "Another account already has this username.")
	switch {
	case nc.Field == "email" && nc.Reserved:
		e = Errorf(Conflict, "This email address belonged to a deleted account and stays unavailable until %s.", nc.Until.UTC().Format("2006-01-02"))
	case nc.Reserved:
		e = Errorf(Conflict, "This username belonged to a deleted account and stays unavailable until %s.", nc.Until.UTC().Format("2006-01-02"))
	case nc.Field == "email":
		e = Errorf(Conflict, "Another account already has this email address.")
	}
	e.Field, e.Err = nc.Field, err
	return e
}
