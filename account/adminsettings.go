package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/keyport/keyport/storage"
)

// EventSettingsUpdated is an admin's change of the runtime settings;
// Changes lists each setting changed, before and after ("" = the default
// from config.toml).
const EventSettingsUpdated = "settings.updated"

// settingsName is the storage.Settings name the runtime settings are kept
// under, as JSON.
const settingsName = "runtime-settings"

// Require2FA values of Settings.
const (
	Require2FAOff      = "off"
	Require2FAEveryone = "everyone"
	Require2FAAdmins   = "admins"
)

// Bounds of the settings, the same as config/validate.go's for the same
// keys.
const (
	minSettingPasswordLength = 8
	maxSettingPasswordLength = 128
	maxSettingLoginAttempts  = 1000
	maxSettingDuration       = 400 * 24 * time.Hour
	// minSettingSessionLifetime leaves an admin who shortens the session
	// time to use the console and set it right: a session shorter than a
	// sign-in takes would lock every browser out, theirs too.
	minSettingSessionLifetime = 5 * time.Minute
)

// Duration is a setting's length of time, in JSON as Go writes durations
// ("15m0s").
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads "15m", "1h30m" and the like.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Settings are the rules an admin changes while Keyport runs (the console's
// settings page, PATCH /api/v1/settings). Stored, a nil field means the
// default from config.toml; in SettingsView's Effective and Defaults every
// field is set. The JSON names are the API's.
type Settings struct {
	ProfilesLocked             *bool     `json:"profiles_locked,omitempty"`
	Require2FA                 *string   `json:"require_2fa,omitempty"` // "off", "everyone" or "admins"
	PasswordMinLength          *int      `json:"password_min_length,omitempty"`
	PasswordMinScore           *int      `json:"password_min_score,omitempty"`
	MaxLoginAttempts           *int      `json:"max_login_attempts,omitempty"`
	MaxLoginAttemptsPerAddress *int      `json:"max_login_attempts_per_address,omitempty"`
	LoginWindow                *Duration `json:"login_window,omitempty"`
	AccountLockoutFailures     *int      `json:"account_lockout_failures,omitempty"`
	AccountLockoutWait         *Duration `json:"account_lockout_wait,omitempty"`
	AccountLockoutMaxWait      *Duration `json:"account_lockout_max_wait,omitempty"`
	AccountLockoutReset        *Duration `json:"account_lockout_reset,omitempty"`
	SessionLifetime            *Duration `json:"session_lifetime,omitempty"`
	AccessTokenLifetime        *Duration `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime            *Duration `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime       *Duration `json:"refresh_token_lifetime,omitempty"`
	RefreshTokenIdle           *Duration `json:"refresh_token_idle,omitempty"`
	NotifyNewDevice            *bool     `json:"notify_new_device,omitempty"`
	NotifyPasswordChanged      *bool     `json:"notify_password_changed,omitempty"`
	NotifySecondFactor         *bool     `json:"notify_second_factor,omitempty"`
	NotifyCredentials          *bool     `json:"notify_credentials,omitempty"`
	NotifyTokenExpiry          *bool     `json:"notify_token_expiry,omitempty"`
	NotifyBlocked              *bool     `json:"notify_blocked,omitempty"`
}

// SettingKind is how a setting is written: a checkbox, a whole number, a
// duration or one of a few words.
type SettingKind string

// The kinds of settings.
const (
	SettingBool     SettingKind = "bool"
	SettingInt      SettingKind = "int"
	SettingDuration SettingKind = "duration"
	SettingChoice   SettingKind = "choice"
)

// SettingField describes one setting for forms: its JSON key, its kind,
// and for choices the words allowed.
type SettingField struct {
	Key     string
	Kind    SettingKind
	Choices []string
}

// SettingFields are the settings in the order the console shows them.
var SettingFields = []SettingField{
	{Key: "profiles_locked", Kind: SettingBool},
	{Key: "require_2fa", Kind: SettingChoice, Choices: []string{Require2FAOff, Require2FAEveryone, Require2FAAdmins}},
	{Key: "password_min_length", Kind: SettingInt},
	{Key: "password_min_score", Kind: SettingInt},
	{Key: "max_login_attempts", Kind: SettingInt},
	{Key: "max_login_attempts_per_address", Kind: SettingInt},
	{Key: "login_window", Kind: SettingDuration},
	{Key: "account_lockout_failures", Kind: SettingInt},
	{Key: "account_lockout_wait", Kind: SettingDuration},
	{Key: "account_lockout_max_wait", Kind: SettingDuration},
	{Key: "account_lockout_reset", Kind: SettingDuration},
	{Key: "session_lifetime", Kind: SettingDuration},
	{Key: "access_token_lifetime", Kind: SettingDuration},
	{Key: "id_token_lifetime", Kind: SettingDuration},
	{Key: "refresh_token_lifetime", Kind: SettingDuration},
	{Key: "refresh_token_idle", Kind: SettingDuration},
	{Key: "notify_new_device", Kind: SettingBool},
	{Key: "notify_password_changed", Kind: SettingBool},
	{Key: "notify_second_factor", Kind: SettingBool},
	{Key: "notify_credentials", Kind: SettingBool},
	{Key: "notify_token_expiry", Kind: SettingBool},
	{Key: "notify_blocked", Kind: SettingBool},
}

// SettingsPatch is a JSON merge patch (RFC 7396) of Settings: a key with a
// value sets that setting, a key with null returns it to the default from
// config.toml, a key left out stays as it is.
type SettingsPatch map[string]json.RawMessage

// SettingsView is what the settings page and GET /api/v1/settings show:
// the rules in force, what an admin stored, and config.toml's defaults.
type SettingsView struct {
	Effective Settings `json:"effective"`
	Stored    Settings `json:"stored"`
	Defaults  Settings `json:"defaults"`
}

// settingsMu serialises changes of the settings, so an If-Match is
// compared with the settings the change is made to (one process per
// database: a process lock is enough).
var settingsMu sync.Mutex

// SettingsETag is the version of the stored settings: a digest of their
// JSON, quoted as HTTP wants it.
func SettingsETag(st Settings) string {
	b, err := json.Marshal(st)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// settingsOf is every setting as p has it.
func settingsOf(p Policy) Settings {
	req := Require2FAOff
	switch {
	case p.Require2FA:
		req = Require2FAEveryone
	case p.Require2FAForAdmins:
		req = Require2FAAdmins
	}
	dur := func(d time.Duration) *Duration { v := Duration(d); return &v }
	return Settings{
		ProfilesLocked:             &p.ProfilesLocked,
		Require2FA:                 &req,
		PasswordMinLength:          &p.MinPasswordLength,
		PasswordMinScore:           &p.MinPasswordScore,
		MaxLoginAttempts:           &p.MaxLoginAttempts,
		MaxLoginAttemptsPerAddress: &p.MaxLoginAttemptsPerAddress,
		LoginWindow:                dur(p.LoginWindow),
		AccountLockoutFailures:     &p.AccountLockoutFailures,
		AccountLockoutWait:         dur(p.AccountLockoutWait),
		AccountLockoutMaxWait:      dur(p.AccountLockoutMaxWait),
		AccountLockoutReset:        dur(p.AccountLockoutReset),
		SessionLifetime:            dur(p.SessionLifetime),
		AccessTokenLifetime:        dur(p.AccessTokenLifetime),
		IDTokenLifetime:            dur(p.IDTokenLifetime),
		RefreshTokenLifetime:       dur(p.RefreshTokenLifetime),
		RefreshTokenIdle:           dur(p.RefreshTokenIdle),
		NotifyNewDevice:            &p.Notify.NewDevice,
		NotifyPasswordChanged:      &p.Notify.PasswordChanged,
		NotifySecondFactor:         &p.Notify.SecondFactor,
		NotifyCredentials:          &p.Notify.Credentials,
		NotifyTokenExpiry:          &p.Notify.TokenExpiry,
		NotifyBlocked:              &p.Notify.Blocked,
	}
}

// apply overlays the stored settings on p.
func (st Settings) apply(p Policy) Policy {
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setDur := func(dst *time.Duration, v *Duration) {
		if v != nil {
			*dst = time.Duration(*v)
		}
	}
	if st.ProfilesLocked != nil {
		p.ProfilesLocked = *st.ProfilesLocked
	}
	if st.Require2FA != nil {
		p.Require2FA = *st.Require2FA == Require2FAEveryone
		p.Require2FAForAdmins = *st.Require2FA == Require2FAAdmins
	}
	setInt(&p.MinPasswordLength, st.PasswordMinLength)
	setInt(&p.MinPasswordScore, st.PasswordMinScore)
	setInt(&p.MaxLoginAttempts, st.MaxLoginAttempts)
	setInt(&p.MaxLoginAttemptsPerAddress, st.MaxLoginAttemptsPerAddress)
	setDur(&p.LoginWindow, st.LoginWindow)
	setInt(&p.AccountLockoutFailures, st.AccountLockoutFailures)
	setDur(&p.AccountLockoutWait, st.AccountLockoutWait)
	setDur(&p.AccountLockoutMaxWait, st.AccountLockoutMaxWait)
	setDur(&p.AccountLockoutReset, st.AccountLockoutReset)
	setDur(&p.SessionLifetime, st.SessionLifetime)
	setDur(&p.AccessTokenLifetime, st.AccessTokenLifetime)
	setDur(&p.IDTokenLifetime, st.IDTokenLifetime)
	setDur(&p.RefreshTokenLifetime, st.RefreshTokenLifetime)
	setDur(&p.RefreshTokenIdle, st.RefreshTokenIdle)
	setBool := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setBool(&p.Notify.NewDevice, st.NotifyNewDevice)
	setBool(&p.Notify.PasswordChanged, st.NotifyPasswordChanged)
	setBool(&p.Notify.SecondFactor, st.NotifySecondFactor)
	setBool(&p.Notify.Credentials, st.NotifyCredentials)
	setBool(&p.Notify.TokenExpiry, st.NotifyTokenExpiry)
	setBool(&p.Notify.Blocked, st.NotifyBlocked)
	return p
}

// checkSettings refuses stored settings out of bounds, naming the first
// setting at fault; p is the policy they make, for the checks across
// settings (a lockout's longest wait against its first), and maxSigned
// the longest an access or ID token may live (signedTokenCeiling).
func checkSettings(st Settings, p Policy, maxSigned time.Duration) error {
	between := func(key string, v *int, lo, hi int) error {
		if v != nil && (*v < lo || *v > hi) {
			return FieldErrorf(key, "%s must be between %d and %d, not %d.", key, lo, hi, *v)
		}
		return nil
	}
	positive := func(key string, v *Duration) error {
		if v != nil && (*v <= 0 || time.Duration(*v) > maxSettingDuration) {
			return FieldErrorf(key, "%s must be longer than 0 and at most 9600h (400 days), not %s.", key, v)
		}
		return nil
	}
	// Signed tokens (ID tokens, JWT access tokens) may live no longer
	// than retired signing keys stay published, or apps could no longer
	// check them; an app's own lifetimes have the same bounds.
	signed := func(key string, v *Duration) error {
		if v != nil && (time.Duration(*v) < MinClientTokenLifetime || time.Duration(*v) > maxSigned) {
			return FieldErrorf(key, "%s must be between %s and %s (signing keys stay published that long), not %s.", key, MinClientTokenLifetime, maxSigned, v)
		}
		return nil
	}
	if v := st.SessionLifetime; v != nil && (time.Duration(*v) < minSettingSessionLifetime || time.Duration(*v) > maxSettingDuration) {
		return FieldErrorf("session_lifetime", "session_lifetime must be between %s and 9600h (400 days), not %s.", minSettingSessionLifetime, v)
	}
	if st.Require2FA != nil {
		switch *st.Require2FA {
		case Require2FAOff, Require2FAEveryone, Require2FAAdmins:
		default:
			return FieldErrorf("require_2fa", "require_2fa must be \"off\", \"everyone\" or \"admins\", not %q.", *st.Require2FA)
		}
	}
	for _, err := range []error{
		between("password_min_length", st.PasswordMinLength, minSettingPasswordLength, maxSettingPasswordLength),
		between("password_min_score", st.PasswordMinScore, 0, 4),
		between("max_login_attempts", st.MaxLoginAttempts, 1, maxSettingLoginAttempts),
		between("max_login_attempts_per_address", st.MaxLoginAttemptsPerAddress, 0, maxSettingLoginAttempts),
		positive("login_window", st.LoginWindow),
		between("account_lockout_failures", st.AccountLockoutFailures, 0, maxSettingLoginAttempts),
		positive("account_lockout_wait", st.AccountLockoutWait),
		positive("account_lockout_max_wait", st.AccountLockoutMaxWait),
		positive("account_lockout_reset", st.AccountLockoutReset),
		signed("access_token_lifetime", st.AccessTokenLifetime),
		signed("id_token_lifetime", st.IDTokenLifetime),
		positive("refresh_token_lifetime", st.RefreshTokenLifetime),
		positive("refresh_token_idle", st.RefreshTokenIdle),
	} {
		if err != nil {
			return err
		}
	}
	if p.AccountLockoutFailures > 0 && p.AccountLockoutMaxWait < p.AccountLockoutWait {
		return FieldErrorf("account_lockout_max_wait", "account_lockout_max_wait must be at least account_lockout_wait (%s), not %s.", p.AccountLockoutWait, p.AccountLockoutMaxWait)
	}
	return nil
}

// signedTokenCeiling is the longest an access or ID token may be given on
// the settings page: an app's own longest (MaxClientTokenLifetime), or
// config.toml's lifetimes where they are longer.
func signedTokenCeiling(defaults Policy) time.Duration {
	return max(MaxClientTokenLifetime, defaults.AccessTokenLifetime, defaults.IDTokenLifetime)
}

// MaxSignedTokenLifetime is the longest an access or ID token issued by
// this process may live: main keeps retired signing keys published that
// long (plus a margin). Called after LoadSettings, it also covers stored
// lifetimes above today's ceiling (config.toml lowered since they were
// set), which stay in force as LoadSettings says; every later change is
// held to the ceiling.
func (s *Service) MaxSignedTokenLifetime() time.Duration {
	p := s.core.policy()
	return max(signedTokenCeiling(s.core.defaults), p.AccessTokenLifetime, p.IDTokenLifetime)
}

// storedSettings reads the settings an admin stored; none is the zero
// Settings (every default).
func (s *AdminService) storedSettings(ctx context.Context) (Settings, error) {
	var st Settings
	b, err := s.settings.GetSetting(ctx, settingsName)
	if errors.Is(err, storage.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read the runtime settings: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decode the runtime settings: %w", err)
	}
	return st, nil
}

// putInForce makes st the rules every area and the throttle apply from
// their next request on.
func (s *core) putInForce(st Settings) {
	p := st.apply(s.defaults)
	s.effective.Store(&p)
	s.limiter.SetPolicy(throttlePolicy(p))
}

// LoadSettings puts the stored settings in force; main calls it once at
// start. Settings that passed the checks when stored may clash with a
// config.toml changed since (a longest lockout wait now below the
// default first one): they stay in force, as the admin chose them, and an
// ERROR line says which to fix on the console; refusing to start would
// leave no console to fix them on.
func (s *AdminService) LoadSettings(ctx context.Context) error {
	settingsMu.Lock()
	defer settingsMu.Unlock()
	st, err := s.storedSettings(ctx)
	if err != nil {
		return err
	}
	if err := checkSettings(st, st.apply(s.defaults), signedTokenCeiling(s.defaults)); err != nil {
		s.log.ErrorContext(ctx, "the runtime settings clash with config.toml; change them on the console's settings page", "setting", ErrorField(err), "err", ErrorMessage(err))
	}
	s.putInForce(st)
	return nil
}

// Settings returns the settings in force, the stored ones and the
// defaults, with the ETag of the stored ones.
func (s *AdminService) Settings(ctx context.Context, actor Actor) (SettingsView, string, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return SettingsView{}, "", err
	}
	st, err := s.storedSettings(ctx)
	if err != nil {
		return SettingsView{}, "", err
	}
	return s.settingsView(st), SettingsETag(st), nil
}

func (s *AdminService) settingsView(st Settings) SettingsView {
	return SettingsView{Effective: settingsOf(st.apply(s.defaults)), Stored: st, Defaults: settingsOf(s.defaults)}
}

// UpdateSettings applies patch to the stored settings and puts them in
// force at once. ifMatch, when not "", must be the ETag of the stored
// settings (PreconditionFailed otherwise). Event: "settings.updated", one
// change per setting changed.
func (s *AdminService) UpdateSettings(ctx context.Context, actor Actor, ifMatch string, patch SettingsPatch) (SettingsView, string, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return SettingsView{}, "", err
	}
	settingsMu.Lock()
	defer settingsMu.Unlock()
	before, err := s.storedSettings(ctx)
	if err != nil {
		return SettingsView{}, "", err
	}
	if ifMatch != "" && ifMatch != SettingsETag(before) {
		return SettingsView{}, "", Errorf(PreconditionFailed, "The settings changed since you read them. Reload and try again.")
	}
	after, err := patched(before, patch)
	if err != nil {
		return SettingsView{}, "", err
	}
	if err := checkSettings(after, after.apply(s.defaults), signedTokenCeiling(s.defaults)); err != nil {
		return SettingsView{}, "", err
	}
	changes := settingChanges(before, after)
	if len(changes) > 0 {
		b, err := json.Marshal(after)
		if err != nil {
			return SettingsView{}, "", fmt.Errorf("encode the runtime settings: %w", err)
		}
		if err := s.settings.PutSetting(ctx, settingsName, b); err != nil {
			return SettingsView{}, "", fmt.Errorf("store the runtime settings: %w", err)
		}
		s.putInForce(after)
		s.audit(ctx, actor, storage.AuditEvent{Type: EventSettingsUpdated, Changes: changes})
	}
	return s.settingsView(after), SettingsETag(after), nil
}

// patched applies a merge patch to st, refusing unknown settings and
// values of the wrong kind by name.
func patched(st Settings, patch SettingsPatch) (Settings, error) {
	var fields map[string]json.RawMessage
	b, err := json.Marshal(st)
	if err != nil {
		return st, fmt.Errorf("encode the runtime settings: %w", err)
	}
	if err := json.Unmarshal(b, &fields); err != nil {
		return st, fmt.Errorf("decode the runtime settings: %w", err)
	}
	for key, raw := range patch {
		f, ok := settingField(key)
		if !ok {
			return st, FieldErrorf(key, "There is no setting %q.", key)
		}
		if raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			delete(fields, key)
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{key: raw})
		var probe Settings
		if err := json.Unmarshal(one, &probe); err != nil {
			return st, FieldErrorf(key, "%s must be %s, or null for the default.", key, phrase(f.Kind.describe()))
		}
		fields[key] = raw
	}
	b, err = json.Marshal(fields)
	if err != nil {
		return st, fmt.Errorf("encode the runtime settings: %w", err)
	}
	var out Settings
	if err := json.Unmarshal(b, &out); err != nil {
		return st, fmt.Errorf("decode the runtime settings: %w", err)
	}
	return out, nil
}

func (k SettingKind) describe() string {
	switch k {
	case SettingBool:
		return "true or false"
	case SettingInt:
		return "a whole number"
	case SettingDuration:
		return `a duration such as "15m" or "1h"`
	}
	return "one of the words allowed"
}

func settingField(key string) (SettingField, bool) {
	for _, f := range SettingFields {
		if f.Key == key {
			return f, true
		}
	}
	return SettingField{}, false
}

// SettingText is a setting's value as forms and the audit log write it;
// "" when it is not set.
func (st Settings) SettingText(key string) string {
	var fields map[string]json.RawMessage
	b, _ := json.Marshal(st)
	_ = json.Unmarshal(b, &fields)
	raw, ok := fields[key]
	if !ok {
		return ""
	}
	if s, err := strconv.Unquote(string(raw)); err == nil {
		return s
	}
	return string(raw)
}

// settingChanges lists the settings that differ between before and after.
func settingChanges(before, after Settings) []storage.AuditChange {
	var out []storage.AuditChange
	for _, f := range SettingFields {
		b, a := before.SettingText(f.Key), after.SettingText(f.Key)
		if a != b {
			out = append(out, storage.AuditChange{Field: f.Key, Before: b, After: a})
		}
	}
	return out
}
