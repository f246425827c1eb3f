package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// UserPatch is an administrator's edit of a user: nil fields stay as they
// are. The JSON keys are the field names errors report.
type UserPatch struct {
	Username      *string            `json:"username,omitempty"`
	Email         *string            `json:"email,omitempty"`
	Name          *string            `json:"name,omitempty"`
	GivenName     *string            `json:"given_name,omitempty"`
	FamilyName    *string            `json:"family_name,omitempty"`
	Nickname      *string            `json:"nickname,omitempty"`
	Locale        *string            `json:"locale,omitempty"`
	Zoneinfo      *string            `json:"zoneinfo,omitempty"`
	PhoneNumber   *string            `json:"phone_number,omitempty"`
	EmailVerified *bool              `json:"email_verified,omitempty"`
	PhoneVerified *bool              `json:"phone_verified,omitempty"`
	Admin         *bool              `json:"admin,omitempty"`
	Roles         *[]string          `json:"roles,omitempty"`
	Groups        *[]string          `json:"groups,omitempty"`
	AppMetadata   *map[string]string `json:"app_metadata,omitempty"`
}

// editableField is one field an administrator edits: its key (the JSON
// key of UserPatch, the Field of errors and the audit's change) and its
// value as text, for comparing and for the audit log.
type editableField struct {
	key string
	get func(u storage.User) string
}

// editableFields are UserPatch's fields in the order they are checked;
// app_metadata is compared key by key apart.
var editableFields = []editableField{
	{"username", func(u storage.User) string { return u.Username }},
	{"email", func(u storage.User) string { return u.Email }},
	{"email_verified", func(u storage.User) string { return strconv.FormatBool(u.EmailVerified) }},
	{"name", func(u storage.User) string { return u.Name }},
	{"given_name", func(u storage.User) string { return u.GivenName }},
	{"family_name", func(u storage.User) string { return u.FamilyName }},
	{"nickname", func(u storage.User) string { return u.Nickname }},
	{"phone_number", func(u storage.User) string { return u.PhoneNumber }},
	{"phone_verified", func(u storage.User) string { return strconv.FormatBool(u.PhoneVerified) }},
	{"locale", func(u storage.User) string { return u.Locale }},
	{"zoneinfo", func(u storage.User) string { return u.Zoneinfo }},
	{"admin", func(u storage.User) string { return strconv.FormatBool(u.Admin) }},
	{"roles", func(u storage.User) string { return strings.Join(u.Roles, ", ") }},
	{"groups", func(u storage.User) string { return strings.Join(u.Groups, ", ") }},
}

// lockedFields maps each field an administrator may not change for u to
// the reason: what the user's directory or upstream provider sets (it
// would overwrite the change at the next sign-in or sync). The admin's
// "profiles locked" setting binds users, not administrators.
func (s *AdminService) lockedFields(u storage.User) map[string]string {
	out := map[string]string{}
	if u.Source == "" {
		return out
	}
	reason := fmt.Sprintf(reasonDirectory, s.sourceName(u.Source))
	// The directory names the account too (it renames it at sign-in).
	out["username"] = reason
	for _, f := range editableFields {
		key := f.key
		switch key {
		case "phone_verified":
			key = "phone_number" // verified along with the number it owns
		case "username", "admin", "roles":
			continue
		}
		if a, ok := AttributeByKey(key); ok && s.users.setBySource(u, a) {
			out[f.key] = reason
		}
	}
	return out
}

// UpdateUser applies an administrator's edit to user id and returns the
// stored user and its new ETag. ifMatch, when not "", must be the user's
// current ETag (UserETag), compared inside the store's transaction, else
// PreconditionFailed; "" skips the check. Every value is validated first
// (Invalid naming the field); then, against the stored user, fields the
// directory owns are refused when the edit would change them (Forbidden,
// with the reason), and taking away the last administrator is refused
// (Conflict). Any refusal changes nothing. An edit that changes nothing
// writes nothing and no audit event; otherwise one "user.updated" event
// lists each changed field with its values before and after.
func (s *AdminService) UpdateUser(ctx context.Context, actor Actor, id, ifMatch string, p UserPatch) (storage.User, string, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return storage.User{}, "", err
	}
	if err := s.validatePatch(ctx, id, &p); err != nil {
		return storage.User{}, "", err
	}
	// Taking the admin flag away counts the administrators, under
	// adminMu, when the user is one who can act. If they were not when
	// read here but are by the time the store applies the edit (promoted
	// or unblocked meanwhile: those need no lock), the edit only undoes
	// that, and every admin counted before is still there.
	admins := -1 // not counted: the edit takes away no acting admin
	if p.Admin != nil && !*p.Admin {
		s.adminMu.Lock()
		defer s.adminMu.Unlock()
		cur, err := s.loadUser(ctx, id)
		if err != nil {
			return storage.User{}, "", err
		}
		if cur.Admin && !cur.Blocked {
			if admins, err = s.adminCount(ctx); err != nil {
				return storage.User{}, "", err
			}
		}
	}
	var (
		changes   []storage.AuditChange
		unchanged storage.User
	)
	u, err := s.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
		if ifMatch != "" && ifMatch != UserETag(u) {
			return u, errStale
		}
		before := u
		if err := applyPatch(&u, p); err != nil {
			return u, err
		}
		changes = diffUsers(before, u)
		if len(changes) == 0 {
			unchanged = before
			return u, errNothingChanged
		}
		locked := s.lockedFields(before)
		for _, c := range changes {
			if reason, ok := locked[c.Field]; ok {
				return u, &Error{Code: Forbidden, Field: c.Field, Message: reason}
			}
		}
		if admins >= 0 && admins <= 1 && before.Admin && !u.Admin && !before.Blocked {
			return u, &Error{Code: Conflict, Field: "admin", Message: "This is the last administrator. Make someone else an administrator first."}
		}
		if u.EmailVerified && u.Email == "" {
			return u, FieldErrorf("email_verified", "There is no email address to verify.")
		}
		if u.PhoneVerified && u.PhoneNumber == "" {
			return u, FieldErrorf("phone_verified", "There is no phone number to verify.")
		}
		u.UpdatedAt = s.now()
		return u, nil
	})
	var ae *Error
	switch {
	case errors.Is(err, errNothingChanged):
		return unchanged, UserETag(unchanged), nil
	case errors.As(err, &ae):
		return storage.User{}, "", ae
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, "", errNoSuchUser
	case errors.Is(err, storage.ErrConflict):
		// Taken meanwhile (validatePatch checked before).
		field := "email"
		if p.Username != nil {
			field = "username"
		}
		return storage.User{}, "", nameTaken(err, field)
	case err != nil:
		return storage.User{}, "", fmt.Errorf("update user %q: %w", id, err)
	}
	s.audit(ctx, actor, fitAudit(userEvent("user.updated", u, changes...)))
	return u, UserETag(u), nil
}

var errStale = Errorf(PreconditionFailed, "Someone else changed this user since you loaded it. Reload and make your change again.")

// validatePatch checks and normalises every value of p on its own (the
// checks that need the stored user come in UpdateUser), and that a new
// username or email is not another account's.
func (s *AdminService) validatePatch(ctx context.Context, id string, p *UserPatch) error {
	if p.Username != nil {
		v := strings.TrimSpace(*p.Username)
		if err := validateUsername(v); err != nil {
			return err
		}
		p.Username = &v
	}
	// The profile's own setters validate (and normalise) its fields; run
	// on a scratch record here, so bad input is refused before the store
	// is touched, and again on the stored user in applyPatch.
	var scratch storage.User
	for key, v := range p.texts() {
		a, _ := AttributeByKey(key)
		if err := a.set(&scratch, *v); err != nil {
			return err
		}
	}
	if p.Roles != nil {
		list, err := validateNameList("roles", *p.Roles)
		if err != nil {
			return err
		}
		p.Roles = &list
	}
	if p.Groups != nil {
		list, err := validateNameList("groups", *p.Groups)
		if err != nil {
			return err
		}
		p.Groups = &list
	}
	if p.AppMetadata != nil {
		if err := ValidateAppMetadata(*p.AppMetadata); err != nil {
			return err
		}
	}
	if p.Username != nil {
		if err := s.notTaken(ctx, id, "username", *p.Username); err != nil {
			return err
		}
	}
	if p.Email != nil {
		if err := s.notTaken(ctx, id, "email", strings.TrimSpace(*p.Email)); err != nil {
			return err
		}
	}
	return nil
}

// notTaken refuses a username or email (field) that names an account other
// than id (a username and an email share one namespace for signing in).
func (s *AdminService) notTaken(ctx context.Context, id, field, login string) error {
	other, err := s.store.GetUserByLogin(ctx, login)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up %s %q: %w", field, login, err)
	case other.ID != id:
		return &Error{Code: Conflict, Field: field, Message: "Another account already has this username or email address."}
	}
	return nil
}

// texts are p's text fields that the profile's attribute setters handle,
// by attribute key.
func (p *UserPatch) texts() map[string]*string {
	out := map[string]*string{}
	for key, v := range map[string]*string{
		"email": p.Email, "name": p.Name, "given_name": p.GivenName, "family_name": p.FamilyName,
		"nickname": p.Nickname, "locale": p.Locale, "zoneinfo": p.Zoneinfo, "phone_number": p.PhoneNumber,
	} {
		if v != nil {
			out[key] = v
		}
	}
	return out
}

// applyPatch applies a validated p to u. The email comes before its
// verified flag and the phone number before its own, so an explicit flag
// wins over what a new address implies.
func applyPatch(u *storage.User, p UserPatch) error {
	if p.Username != nil {
		u.Username = *p.Username
	}
	for _, key := range []string{"email", "name", "given_name", "family_name", "nickname", "phone_number", "locale", "zoneinfo"} {
		if v := p.texts()[key]; v != nil {
			a, _ := AttributeByKey(key)
			if err := a.set(u, *v); err != nil {
				return err
			}
		}
	}
	if p.EmailVerified != nil {
		addr := strings.ToLower(u.Email)
		u.EmailVerified = *p.EmailVerified
		if u.EmailVerified {
			rememberVerifiedEmail(u)
		} else {
			u.VerifiedEmails = slices.DeleteFunc(slices.Clone(u.VerifiedEmails), func(e string) bool { return e == addr })
		}
	}
	if p.PhoneVerified != nil {
		u.PhoneVerified = *p.PhoneVerified
	}
	if p.Admin != nil {
		u.Admin = *p.Admin
	}
	if p.Roles != nil {
		u.Roles = nilIfEmpty(*p.Roles)
	}
	if p.Groups != nil {
		u.Groups = nilIfEmpty(*p.Groups)
	}
	if p.AppMetadata != nil {
		u.AppMetadata = nil
		if len(*p.AppMetadata) > 0 {
			u.AppMetadata = maps.Clone(*p.AppMetadata)
		}
	}
	return nil
}

func nilIfEmpty(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	return list
}

// diffUsers lists the editable fields whose value differs between before
// and after, in editableFields' order, then app_metadata key by key
// ("app_metadata.KEY").
func diffUsers(before, after storage.User) []storage.AuditChange {
	var out []storage.AuditChange
	for _, f := range editableFields {
		if b, a := f.get(before), f.get(after); b != a {
			out = append(out, storage.AuditChange{Field: f.key, Before: b, After: a})
		}
	}
	keys := maps.Clone(before.AppMetadata)
	if keys == nil {
		keys = map[string]string{}
	}
	maps.Copy(keys, after.AppMetadata)
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		b, inBefore := before.AppMetadata[k]
		a, inAfter := after.AppMetadata[k]
		if b != a || inBefore != inAfter {
			out = append(out, storage.AuditChange{Field: "app_metadata." + k, Before: b, After: a})
		}
	}
	return out
}

// validateUsername applies the one rule for usernames.
func validateUsername(v string) error {
	if !usernamePattern.MatchString(v) {
		return FieldErrorf("username", "Username must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.")
	}
	return nil
}

// Bounds of roles, groups and app_metadata.
const (
	maxNameListEntries  = 100
	maxNameListEntry    = storage.MaxGroupName // bytes: a group's name fits
	maxAppMetadataKeys  = 64
	maxAppMetadataValue = 1 << 10 // bytes
	maxAppMetadataTotal = 8 << 10 // bytes of keys and values together
)

var appMetadataKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,64}$`)

// validateNameList checks a list of roles or groups (field) and returns it
// trimmed, without empty entries or repeats, in the order given. Entries
// are names apps compare: no commas (lists are shown joined by them), no
// control characters.
func validateNameList(field string, list []string) ([]string, error) {
	if len(list) > maxNameListEntries {
		return nil, FieldErrorf(field, "At most 100 entries are allowed.")
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		v = strings.TrimSpace(v)
		if v == "" || slices.Contains(out, v) {
			continue
		}
		bad := !utf8.ValidString(v) || len(v) > maxNameListEntry ||
			strings.ContainsFunc(v, func(r rune) bool { return r == ',' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
		if bad {
			return nil, FieldErrorf(field, "Each entry must be at most 128 bytes, without commas or control characters.")
		}
		out = append(out, v)
	}
	return out, nil
}

// ValidateAppMetadata checks an administrator's app_metadata: at most 64
// keys of 1 to 64 letters, digits, dots, dashes or underscores, each value
// at most 1 KiB of text, 8 KiB in all (so an edit's audit event, with the
// values before and after, stays within the audit log's bound).
func ValidateAppMetadata(m map[string]string) error {
	if len(m) > maxAppMetadataKeys {
		return FieldErrorf("app_metadata", "At most 64 app_metadata keys are allowed.")
	}
	total := 0
	for k, v := range m {
		if !appMetadataKeyPattern.MatchString(k) {
			return FieldErrorf("app_metadata", "app_metadata keys are 1 to 64 letters, digits, dots, dashes or underscores.")
		}
		if len(v) > maxAppMetadataValue || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return FieldErrorf("app_metadata", "Each app_metadata value must be text of at most 1 KiB.")
		}
		total += len(k) + len(v)
	}
	if total > maxAppMetadataTotal {
		return FieldErrorf("app_metadata", "app_metadata must be at most 8 KiB in all.")
	}
	return nil
}

// ParseAppMetadata reads app_metadata as the console's text area and the
// API send it: a JSON object whose values are strings ("" or "{}" for
// none), and validates it.
func ParseAppMetadata(raw string) (map[string]string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return map[string]string{}, nil
	}
	if len(raw) > 2*maxAppMetadataTotal {
		return nil, FieldErrorf("app_metadata", "app_metadata must be at most 8 KiB in all.")
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(raw), &m); err != nil || m == nil {
		return nil, FieldErrorf("app_metadata", "app_metadata must be a JSON object whose values are strings.")
	}
	if err := ValidateAppMetadata(m); err != nil {
		return nil, err
	}
	return m, nil
}
