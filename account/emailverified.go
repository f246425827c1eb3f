package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/keyport/keyport/storage"
)

// maxVerifiedEmails bounds how many verified addresses a user record
// remembers: enough to go back and forth between a work and a private
// address, small enough to keep the record small.
const maxVerifiedEmails = 5

// rememberVerifiedEmail notes u's address in u.VerifiedEmails when it is
// verified, as the newest entry, dropping the oldest beyond the bound.
// Records from before the list existed learn their address this way the
// first time it matters.
func rememberVerifiedEmail(u *storage.User) {
	if !u.EmailVerified || u.Email == "" {
		return
	}
	addr := strings.ToLower(u.Email)
	list := slices.DeleteFunc(slices.Clone(u.VerifiedEmails), func(e string) bool { return e == addr })
	list = append(list, addr)
	if len(list) > maxVerifiedEmails {
		list = list[len(list)-maxVerifiedEmails:]
	}
	u.VerifiedEmails = list
}

// changeEmail sets u's email to addr. The verified flag follows the
// address: a new address is not verified (only the mail a later version
// sends can prove it), and an address verified before is verified again.
func changeEmail(u *storage.User, addr string) {
	if strings.EqualFold(addr, u.Email) {
		u.Email = addr
		return
	}
	rememberVerifiedEmail(u)
	u.Email = addr
	u.EmailVerified = slices.Contains(u.VerifiedEmails, strings.ToLower(addr))
}

// SetEmailVerified is the administrator vouching for (or withdrawing) the
// current email address of a user, found by username or email. An address
// a directory provides is refused: the directory says whether it is
// verified, and would overwrite the change at the next sign-in.
func (s *UserService) SetEmailVerified(ctx context.Context, login string, verified bool) (storage.User, error) {
	u, err := s.lookup(ctx, login)
	if err != nil {
		return storage.User{}, err
	}
	if u.Source != "" && slices.Contains(s.ownedFields(u.Source), "email") {
		return storage.User{}, Errorf(Forbidden, "The email of %s comes from %s, which also says whether it is verified.", u.Username, s.sourceName(u.Source))
	}
	id, before := u.ID, u.EmailVerified
	u, err = s.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
		before = u.EmailVerified
		addr := strings.ToLower(u.Email)
		u.EmailVerified = verified
		if verified {
			rememberVerifiedEmail(&u)
		} else {
			u.VerifiedEmails = slices.DeleteFunc(slices.Clone(u.VerifiedEmails), func(e string) bool { return e == addr })
		}
		u.UpdatedAt = s.now()
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, Errorf(NotFound, "No user %q.", login)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("set email_verified of %q: %w", id, err)
	}
	s.log.InfoContext(ctx, "email verified flag set by an administrator", "user_id", u.ID, "email_verified", verified)
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: EventUserEmailVerified, TargetUserID: u.ID,
		Changes: []storage.AuditChange{{Field: "email_verified", Before: strconv.FormatBool(before), After: strconv.FormatBool(verified)}}})
	return u, nil
}
