package account

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/keyport/keyport/storage"
)

// Attribute is one row of the profile policy table. The table drives the
// profile form, the lock checks, the claims apps receive and the page that
// tells people where each field comes from and who sees it, so those four
// cannot disagree.
type Attribute struct {
	Key   string // form field and JSON key (/api/v1/me)
	Label string // English; the portal translates it
	// Claim is the OIDC claim carrying the value, released by Scope; ""
	// means the value never leaves Keyport in a token or userinfo.
	Claim string
	Scope string
	// Editable: the user may change it (unless locked). Username never is.
	Editable bool
	// Lockable: the admin's "profiles locked" setting applies to it.
	Lockable bool
	// DirectoryOwnable: an external directory may own (and lock) it.
	DirectoryOwnable bool
	// LockedWith names the field whose owner also locks this one: a value
	// Keyport keeps that only makes sense beside the other (the recovery
	// email beside a directory's email, where the directory resets
	// passwords and a second address here would be a way around it).
	LockedWith string
	// Kind tells the form how to show the value.
	Kind AttributeKind

	get   func(u storage.User) string
	set   func(u *storage.User, v string) error // validates and applies
	claim func(u storage.User, issuer string) any
}

// AttributeKind is how a value is shown and entered.
type AttributeKind string

const (
	KindText     AttributeKind = "text"
	KindEmail    AttributeKind = "email"
	KindPhone    AttributeKind = "tel"
	KindLanguage AttributeKind = "language"
	KindTimezone AttributeKind = "timezone"
	KindTheme    AttributeKind = "theme"
	KindTime     AttributeKind = "time"
	KindList     AttributeKind = "list"
	KindImage    AttributeKind = "image"
	KindFlag     AttributeKind = "flag"
)

// PortalLanguages are the languages the portal ships, the only valid values
// of the locale field.
var PortalLanguages = []string{"en", "de"}

// DirectoryOwnedFields names the fields a directory source owns; the
// directory layer replaces it with the source's own capabilities.
var DirectoryOwnedFields = func(source string) []string {
	var keys []string
	for _, a := range Attributes {
		if a.DirectoryOwnable {
			keys = append(keys, a.Key)
		}
	}
	return keys
}

const maxNameRunes = 200

var (
	e164Pattern = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	// Custom data keys: short identifiers, so apps and APIs can rely on them.
	customKeyPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.-]{0,39}$`)
)

func timeString(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func textSetter(key, label string, apply func(u *storage.User, v string)) func(u *storage.User, v string) error {
	return func(u *storage.User, v string) error {
		v = strings.TrimSpace(v)
		if utf8.RuneCountInString(v) > maxNameRunes {
			return FieldErrorf(key, "%s must be at most %d characters.", phrase(label), maxNameRunes)
		}
		if !utf8.ValidString(v) || strings.ContainsAny(v, "\x00\r\n") {
			return FieldErrorf(key, "%s contains characters that are not allowed.", phrase(label))
		}
		apply(u, v)
		return nil
	}
}

// Attributes is the profile policy table, in the order the profile page
// shows it.
var Attributes = []Attribute{
	{Key: "id", Label: "User ID", Claim: "sub", Scope: "openid", Kind: KindText,
		get: func(u storage.User) string { return u.ID }},
	{Key: "username", Label: "Username", Claim: "preferred_username", Scope: "profile", Kind: KindText,
		get: func(u storage.User) string { return u.Username }},
	{Key: "given_name", Label: "First name", Claim: "given_name", Scope: "profile", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindText,
		get: func(u storage.User) string { return u.GivenName },
		set: textSetter("given_name", "First name", func(u *storage.User, v string) { u.GivenName = v })},
	{Key: "family_name", Label: "Last name", Claim: "family_name", Scope: "profile", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindText,
		get: func(u storage.User) string { return u.FamilyName },
		set: textSetter("family_name", "Last name", func(u *storage.User, v string) { u.FamilyName = v })},
	{Key: "name", Label: "Display name", Claim: "name", Scope: "profile", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindText,
		get:   func(u storage.User) string { return u.Name },
		set:   textSetter("name", "Display name", func(u *storage.User, v string) { u.Name = v }),
		claim: func(u storage.User, _ string) any { return nonEmpty(DisplayName(u)) }},
	{Key: "nickname", Label: "Nickname", Claim: "nickname", Scope: "profile", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindText,
		get: func(u storage.User) string { return u.Nickname },
		set: textSetter("nickname", "Nickname", func(u *storage.User, v string) { u.Nickname = v })},
	{Key: "email", Label: "Email", Claim: "email", Scope: "email", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindEmail,
		get: func(u storage.User) string { return u.Email },
		set: func(u *storage.User, v string) error {
			v = strings.TrimSpace(v)
			if err := validateEmail(v); err != nil {
				return FieldErrorf("email", "Enter a valid email address.")
			}
			changeEmail(u, v)
			return nil
		}},
	{Key: "email_verified", Label: "Email verified", Claim: "email_verified", Scope: "email", Kind: KindFlag,
		get:   func(u storage.User) string { return fmt.Sprint(u.EmailVerified) },
		claim: func(u storage.User, _ string) any { return u.EmailVerified }},
	{Key: "recovery_email", Label: "Recovery email", Editable: true, Lockable: true, LockedWith: "email", Kind: KindEmail,
		get: func(u storage.User) string { return u.RecoveryEmail },
		set: func(u *storage.User, v string) error {
			v = strings.TrimSpace(v)
			if v != "" && validateEmail(v) != nil {
				return FieldErrorf("recovery_email", "Enter a valid recovery email address, or leave it empty to use your primary email.")
			}
			u.RecoveryEmail = v
			return nil
		}},
	{Key: "phone_number", Label: "Mobile phone", Claim: "phone_number", Scope: "phone", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindPhone,
		get: func(u storage.User) string { return u.PhoneNumber },
		set: func(u *storage.User, v string) error {
			v = strings.Join(strings.Fields(v), "")
			if v != "" && !e164Pattern.MatchString(v) {
				return FieldErrorf("phone_number", "Enter the phone number in international format, like +4915123456789.")
			}
			if v != u.PhoneNumber {
				u.PhoneVerified = false
			}
			u.PhoneNumber = v
			return nil
		}},
	{Key: "phone_number_verified", Label: "Phone verified", Claim: "phone_number_verified", Scope: "phone", Kind: KindFlag,
		get: func(u storage.User) string { return fmt.Sprint(u.PhoneVerified) },
		claim: func(u storage.User, _ string) any {
			if u.PhoneNumber == "" {
				return nil
			}
			return u.PhoneVerified
		}},
	{Key: "picture", Label: "Avatar", Claim: "picture", Scope: "profile", Editable: true, Lockable: true, DirectoryOwnable: true, Kind: KindImage,
		get:   func(u storage.User) string { return AvatarPath(u) },
		claim: func(u storage.User, issuer string) any { return strings.TrimSuffix(issuer, "/") + AvatarPath(u) }},
	{Key: "locale", Label: "Language", Claim: "locale", Scope: "profile", Editable: true, Lockable: true, Kind: KindLanguage,
		get: func(u storage.User) string { return u.Locale },
		set: func(u *storage.User, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				tag, err := language.Parse(v)
				base, _ := tag.Base()
				if err != nil || !slices.Contains(PortalLanguages, base.String()) {
					return FieldErrorf("locale", "Choose one of the languages offered.")
				}
				// Keep the language the portal speaks ("de" for "de-AT"),
				// so the form's picker shows it and a later save keeps it.
				v = base.String()
			}
			u.Locale = v
			return nil
		}},
	{Key: "zoneinfo", Label: "Time zone", Claim: "zoneinfo", Scope: "profile", Editable: true, Lockable: true, Kind: KindTimezone,
		get: func(u storage.User) string { return u.Zoneinfo },
		set: func(u *storage.User, v string) error {
			v = strings.TrimSpace(v)
			if v != "" {
				if err := ValidTimezone(v); err != nil {
					return err
				}
			}
			u.Zoneinfo = v
			return nil
		}},
	{Key: "theme", Label: "Appearance", Editable: true, Kind: KindTheme,
		get: func(u storage.User) string { return u.Theme },
		set: func(u *storage.User, v string) error {
			switch v = strings.TrimSpace(v); v {
			case "light", "dark":
			case "", "system":
				v = ""
			default:
				return FieldErrorf("theme", "Choose light, dark or system.")
			}
			u.Theme = v
			return nil
		}},
	{Key: "roles", Label: "Roles", Claim: "roles", Scope: "groups", Kind: KindList,
		get:   func(u storage.User) string { return strings.Join(u.Roles, ", ") },
		claim: func(u storage.User, _ string) any { return nonNil(u.Roles) }},
	{Key: "groups", Label: "Groups", Claim: "groups", Scope: "groups", DirectoryOwnable: true, Kind: KindList,
		get:   func(u storage.User) string { return strings.Join(u.Groups, ", ") },
		claim: func(u storage.User, _ string) any { return nonNil(u.Groups) }},
	{Key: "updated_at", Label: "Last changed", Claim: "updated_at", Scope: "profile", Kind: KindTime,
		get: func(u storage.User) string { return timeString(u.UpdatedAt) },
		claim: func(u storage.User, _ string) any {
			if u.UpdatedAt.IsZero() {
				return nil
			}
			return u.UpdatedAt.Unix()
		}},
	{Key: "created_at", Label: "Registered on", Kind: KindTime,
		get: func(u storage.User) string { return timeString(u.CreatedAt) }},
	{Key: "last_login", Label: "Last sign-in", Kind: KindTime,
		get: func(u storage.User) string { return timeString(u.LastLogin) }},
}

func nonEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// AttributeByKey finds a row of the policy table.
func AttributeByKey(key string) (Attribute, bool) {
	for _, a := range Attributes {
		if a.Key == key {
			return a, true
		}
	}
	return Attribute{}, false
}

// Value is the attribute's value for u as text.
func (a Attribute) Value(u storage.User) string { return a.get(u) }

// ClaimValue is what the attribute's claim carries for u, or nil when the
// claim is left out.
func (a Attribute) ClaimValue(u storage.User, issuer string) any {
	if a.Claim == "" || a.Claim == "sub" {
		return nil
	}
	if a.claim != nil {
		return a.claim(u, issuer)
	}
	return nonEmpty(a.get(u))
}

// Claims returns every claim the scopes release for u, from the policy
// table. It is the only way user fields become claims; internal fields
// (blocked, last IP, last sign-in, sign-in count, password and second-factor
// data, app metadata) have no row with a claim.
func Claims(u storage.User, scopes []string, issuer string) map[string]any {
	out := make(map[string]any)
	for _, a := range Attributes {
		if a.Claim == "" || !slices.Contains(scopes, a.Scope) {
			continue
		}
		if v := a.ClaimValue(u, issuer); v != nil {
			out[a.Claim] = v
		}
	}
	return out
}

// DisplayName is the name shown for u: the one they set, else first and last
// name, else the username.
func DisplayName(u storage.User) string {
	if u.Name != "" {
		return u.Name
	}
	if n := strings.TrimSpace(u.GivenName + " " + u.FamilyName); n != "" {
		return n
	}
	return u.Username
}

// AvatarPath is where u's picture is served; the version changes with each
// upload so caches never show an old one.
func AvatarPath(u storage.User) string {
	p := "/avatar/" + u.ID
	if !u.AvatarAt.IsZero() {
		p += fmt.Sprintf("?v=%d", u.AvatarAt.Unix())
	}
	return p
}

// ValidTimezone accepts IANA time zone names.
func ValidTimezone(tz string) error {
	if tz == "Local" || len(tz) > 64 {
		return FieldErrorf("zoneinfo", "Choose a time zone such as Europe/Berlin.")
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return FieldErrorf("zoneinfo", "Choose a time zone such as Europe/Berlin.")
	}
	return nil
}

// Lock reasons the portal shows (and translates).
const (
	ReasonUsername   = "Your username is your sign-in name and cannot be changed."
	ReasonReadOnly   = "Set by Keyport; it cannot be edited here."
	ReasonAdminLock  = "Your administrator has locked profile changes."
	reasonDirectory  = "Managed by %s."
	ReasonAvatarForm = "Change your avatar with the upload form."
)

// FieldLock tells whether u may not edit key, and why.
func (s *UserService) FieldLock(u storage.User, key string) (locked bool, reason string) {
	a, ok := AttributeByKey(key)
	switch {
	case !ok:
		return true, ReasonReadOnly
	case key == "username":
		return true, ReasonUsername
	// The directory's reason comes before the administrator's: the
	// directory would overwrite the value even if the lock were lifted.
	case s.setBySource(u, a) || s.lockedWithDirectory(u, a):
		return true, fmt.Sprintf(reasonDirectory, s.sourceName(u.Source))
	case a.Lockable && s.policy().ProfilesLocked:
		return true, ReasonAdminLock
	case !a.Editable:
		return true, ReasonReadOnly
	}
	return false, ""
}

// lockedWithDirectory tells whether a is a value Keyport keeps beside a
// field that u's directory owns (see Attribute.LockedWith). Such a value is
// not in force: it stays stored, but nothing uses it, and it may be
// removed, never set.
func (s *UserService) lockedWithDirectory(u storage.User, a Attribute) bool {
	return a.LockedWith != "" && u.Source != "" && slices.Contains(s.ownedFields(u.Source), a.LockedWith)
}

// FieldValue is the value of key for u that is in force, as the profile
// page and the API show it: a value locked with a directory's field is not
// ("" here), whatever was stored before the directory took the field over.
func (s *UserService) FieldValue(u storage.User, key string) string {
	a, ok := AttributeByKey(key)
	if !ok || s.lockedWithDirectory(u, a) {
		return ""
	}
	return a.get(u)
}

// Source names where the attribute's value comes from for u: the display
// name of u's directory or upstream provider for what it sets, else
// Keyport.
func (s *UserService) Source(u storage.User, key string) string {
	a, _ := AttributeByKey(key)
	if s.setBySource(u, a) {
		return s.sourceName(u.Source)
	}
	return "Keyport"
}

// setBySource tells whether u's directory or upstream provider sets a for
// them: the fields it owns, the verified flag along with the email it
// comes with, and the groups when it provides groups (see provision).
func (s *UserService) setBySource(u storage.User, a Attribute) bool {
	if u.Source == "" {
		return false
	}
	owned := s.ownedFields(u.Source)
	switch a.Key {
	case "email_verified":
		return slices.Contains(owned, "email")
	case "groups":
		if src := s.source(u.Source); src != nil {
			return src.Capabilities().Groups
		}
	}
	return a.DirectoryOwnable && slices.Contains(owned, a.Key)
}

// UpdateProfile changes profile fields by key. Every key is checked (known,
// editable, not locked) and every value validated before anything is
// written; one bad field changes nothing.
func (s *UserService) UpdateProfile(ctx context.Context, userID string, changes map[string]string) (storage.User, error) {
	if len(changes) == 0 {
		return s.getUser(ctx, userID)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range changes {
			if !yield(k) {
				return
			}
		}
	})
	var (
		changed   []string
		unchanged storage.User
	)
	u, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		// First every key: a crafted post of a locked field is refused as
		// such, whatever else in it is wrong.
		for _, k := range keys {
			if err := s.CheckChange(u, k, changes[k]); err != nil {
				return u, err
			}
		}
		// Then every value, on a copy: the store writes nothing when fn
		// fails, so one bad field leaves the whole profile as it was.
		changed = changed[:0]
		for _, k := range keys {
			a, _ := AttributeByKey(k)
			before := a.get(u)
			if err := a.set(&u, changes[k]); err != nil {
				return u, err
			}
			if a.get(u) != before {
				changed = append(changed, k)
			}
		}
		// A save that changes nothing writes nothing: apps read UpdatedAt
		// as updated_at, and a form posts every field on each save.
		if len(changed) == 0 {
			unchanged = u
			return u, errNothingChanged
		}
		u.UpdatedAt = s.now()
		return u, nil
	})
	var ae *Error
	switch {
	case errors.Is(err, errNothingChanged):
		return unchanged, nil
	case errors.As(err, &ae):
		return storage.User{}, ae
	case errors.Is(err, storage.ErrConflict):
		// The email is the only unique key a profile change can touch.
		return storage.User{}, &Error{Code: Conflict, Field: "email", Message: "This email address belongs to another account.", Err: err}
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, Errorf(NotFound, "This account no longer exists.")
	case err != nil:
		return storage.User{}, fmt.Errorf("update profile of %q: %w", userID, err)
	}
	// A form posts every field on each save: the log names only those
	// whose value changed (never the values), and a save that changed
	// nothing is not worth a line.
	if len(changed) > 0 {
		s.log.InfoContext(ctx, "profile updated", "user_id", u.ID, "fields", changed)
	}
	return u, nil
}

// errNothingChanged ends an UpdateUser whose save would change nothing, so
// the store writes nothing.
var errNothingChanged = errors.New("nothing changed")

// CheckChange refuses a change of key to value for u: unknown keys as bad
// input, read-only or locked ones as forbidden, with the reason. Removing a
// value that is locked with a directory's field is allowed (unless the
// administrator locked profiles): it takes away a way around the
// directory, never adds one.
func (s *UserService) CheckChange(u storage.User, key, value string) error {
	a, ok := AttributeByKey(key)
	switch {
	case !ok:
		return FieldErrorf(key, "There is no profile field %q.", key)
	case s.lockedWithDirectory(u, a) && strings.TrimSpace(value) == "" && !(a.Lockable && s.policy().ProfilesLocked):
		return nil
	case key == "picture":
		if locked, reason := s.FieldLock(u, key); locked {
			return &Error{Code: Forbidden, Field: key, Message: reason}
		}
		return &Error{Code: Forbidden, Field: key, Message: ReasonAvatarForm}
	}
	if locked, reason := s.FieldLock(u, key); locked || a.set == nil {
		if reason == "" {
			reason = ReasonReadOnly
		}
		return &Error{Code: Forbidden, Field: key, Message: reason}
	}
	return nil
}

// SetCustomData replaces the user's own key/value data.
func (s *UserService) SetCustomData(ctx context.Context, userID string, data map[string]string) (storage.User, error) {
	if err := ValidateCustomData(data); err != nil {
		return storage.User{}, err
	}
	u, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		if s.policy().ProfilesLocked {
			return u, &Error{Code: Forbidden, Field: "custom_data", Message: ReasonAdminLock}
		}
		u.CustomData = data
		if len(data) == 0 {
			u.CustomData = nil
		}
		u.UpdatedAt = s.now()
		return u, nil
	})
	var ae *Error
	if errors.As(err, &ae) {
		return storage.User{}, ae
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("set custom data of %q: %w", userID, err)
	}
	return u, nil
}

// ValidateCustomData checks custom data without storing it.
func ValidateCustomData(data map[string]string) error {
	if len(data) > 20 {
		return FieldErrorf("custom_data", "You can keep at most 20 custom entries.")
	}
	for k, v := range data {
		if !customKeyPattern.MatchString(k) {
			return FieldErrorf("custom_data", "Keys start with a letter and use only letters, digits, dots, dashes and underscores (at most 40).")
		}
		if utf8.RuneCountInString(v) > 500 || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return FieldErrorf("custom_data", "Values must be at most 500 characters.")
		}
	}
	return nil
}

func (s *UserService) getUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, Errorf(NotFound, "This account no longer exists.")
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user %q: %w", id, err)
	}
	return u, nil
}

// RecoveryAddress is where password-reset mail goes: the recovery email, or
// the primary one when none is set or when the recovery email is not in
// force (the user's directory owns the email, and with it password resets).
func (s *UserService) RecoveryAddress(u storage.User) string {
	if r := s.FieldValue(u, "recovery_email"); r != "" {
		return r
	}
	return u.Email
}
