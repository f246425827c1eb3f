package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
)

// maxUsernameSuffix bounds the search for a free name ("zoe", "zoe-2", …):
// past it, the name is taken too often to guess further.
const maxUsernameSuffix = 50

// usernameFrom turns what an upstream calls a person into a Keyport
// username, or "" when nothing usable is left: an address keeps its local
// part ("ulla@example.org" gives "ulla"), letters lose their accents ("zoë"
// gives "zoe"), everything is lower case, and each run of other characters
// becomes one dash.
func usernameFrom(raw string) string {
	raw = strings.TrimSpace(raw)
	if local, _, ok := strings.Cut(raw, "@"); ok {
		raw = local
	}
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(raw) {
		switch {
		case unicode.Is(unicode.Mn, r):
			continue // the accent of a decomposed letter
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
			dash = false
		case r == '.' || r == '_' || r == '-':
			b.WriteRune(r)
			dash = false
		default:
			if !dash && b.Len() > 0 {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	name := strings.TrimLeft(b.String(), "._-")
	if len(name) > 56 { // room for a suffix within the 64 of usernamePattern
		name = name[:56]
	}
	name = strings.TrimRight(name, "._-")
	if !usernamePattern.MatchString(name) {
		return ""
	}
	return name
}

// upstreamUsername derives a valid, unused username for a person an
// upstream provider signs in for the first time: from its username claim,
// else from the local part of the email, with "-2", "-3", … added when the
// name is taken. What was done is logged, since the person will sign in
// with the result.
func (s *Service) upstreamUsername(ctx context.Context, src directory.CallbackSource, ident directory.Identity) (string, error) {
	base, from := usernameFrom(ident.Username), "username claim"
	if base == "" {
		base, from = usernameFrom(ident.Email), "email"
	}
	if base == "" {
		s.log.WarnContext(ctx, "upstream account has no usable username or email; not created", "source", src.ID(), "subject", ident.ID, "username_claim", ident.Username)
		return "", Errorf(Forbidden, "Your %s account has no usable username. Ask your administrator.", src.Name())
	}
	for i := 1; i <= maxUsernameSuffix; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		_, err := s.store.GetUserByLogin(ctx, name)
		if errors.Is(err, storage.ErrNotFound) {
			if name != ident.Username {
				s.log.InfoContext(ctx, "username derived for an upstream account", "source", src.ID(), "subject", ident.ID,
					"username_claim", ident.Username, "from", from, "username", name)
			}
			return name, nil
		}
		if err != nil {
			return "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("look up username %q: %w", name, err)}
		}
	}
	s.log.WarnContext(ctx, "no free username for an upstream account; not created", "source", src.ID(), "subject", ident.ID, "username", base)
	return "", Errorf(Conflict, "An account with your username already exists here. Ask your administrator to link it.")
}
