package account

import (
	"context"
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

// transliterations spell the Latin letters that have no decomposition (so
// NFKD leaves them whole) the way their languages write them without them.
var transliterations = map[rune]string{
	'ß': "ss", 'ẞ': "ss", 'æ': "ae", 'Æ': "ae", 'œ': "oe", 'Œ': "oe", 'ø': "o", 'Ø': "o",
	'ł': "l", 'Ł': "l", 'đ': "d", 'Đ': "d", 'ð': "d", 'Ð': "d", 'þ': "th", 'Þ': "th",
	'ħ': "h", 'Ħ': "h", 'ı': "i", 'ŧ': "t", 'Ŧ': "t",
}

// usernameFrom turns what an upstream calls a person into a Keyport
// username, or "" when nothing usable is left: an address keeps its local
// part ("ulla@example.org" gives "ulla"), letters lose their accents ("zoë"
// gives "zoe") or are spelled out ("ß" gives "ss", "ø" gives "o"),
// everything is lower case, and each run of other characters becomes one
// dash.
func usernameFrom(raw string) string {
	raw = strings.TrimSpace(raw)
	if local, _, ok := strings.Cut(raw, "@"); ok {
		raw = local
	}
	var b strings.Builder
	dash := false
	for _, r := range norm.NFKD.String(raw) {
		if t, ok := transliterations[r]; ok {
			b.WriteString(t)
			dash = false
			continue
		}
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

// createUpstreamUser creates the account of a person an upstream provider
// signs in for the first time, under a valid, unused username derived from
// its username claim, else from the local part of the email when the
// upstream says the email is verified (an unverified address is anyone's
// to claim), with "-2", "-3", … added when the name is taken, also when
// another first sign-in takes it between the check and the creation. What
// was done is logged, since the person will sign in with the result.
func (s *DirectoryService) createUpstreamUser(ctx context.Context, src directory.CallbackSource, ident directory.Identity) (storage.User, error) {
	claim := ident.Username
	base, from := usernameFrom(ident.Username), "username claim"
	if base == "" && ident.EmailVerified {
		base, from = usernameFrom(ident.Email), "verified email"
	}
	if base == "" {
		s.log.WarnContext(ctx, "upstream account has no usable username or verified email; not created", "source", src.ID(), "subject", ident.ID,
			"username_claim", claim, "email_verified", ident.EmailVerified)
		return storage.User{}, Errorf(Forbidden, "Your %s account has no usable username. Ask your administrator.", src.Name())
	}
	for i := 1; i <= maxUsernameSuffix; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		if _, taken, err := userByLogin(ctx, s.store, name); err != nil {
			return storage.User{}, err
		} else if taken {
			continue
		}
		ident.Username = name
		u, _, err := s.provision(ctx, src, ident)
		if ErrorCode(err) == Conflict {
			// Taken meanwhile by another first sign-in: try the next
			// name. A clash of anything else (the email) stays a clash.
			if _, taken, terr := userByLogin(ctx, s.store, name); terr == nil && taken {
				continue
			}
		}
		if err != nil {
			return storage.User{}, err
		}
		if u.Username != claim {
			s.log.InfoContext(ctx, "username derived for an upstream account", "source", src.ID(), "subject", ident.ID,
				"username_claim", claim, "from", from, "username", u.Username)
		}
		return u, nil
	}
	s.log.WarnContext(ctx, "no free username for an upstream account; not created", "source", src.ID(), "subject", ident.ID, "username", base)
	return storage.User{}, Errorf(Conflict, "An account with your username already exists here. Ask your administrator to link it.")
}
