package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
)

// The management API's runtime settings: the rules an admin changes while
// Keyport runs (account.AdminService.Settings).
func (s *Server) registerAdminSettingsAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/settings", s.apiGetSettings, apiOp{Summary: "The runtime settings: those in force, those stored (a setting left out uses the default from config.toml) and config.toml's defaults", Response: settingsViewJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "PATCH", "/settings", s.apiPatchSettings, apiOp{Summary: "Change runtime settings, in force at once (a JSON merge patch: null returns a setting to its default from config.toml); send If-Match with the ETag you read, or get 412 if someone changed them since", Body: settingsPatchJSON{}, Response: settingsViewJSON{}, ETag: true})
}

// settingsJSON is account.Settings as the API writes it: durations as text
// ("15m0s"); a setting left out is not set.
type settingsJSON struct {
	ProfilesLocked             *bool   `json:"profiles_locked,omitempty"`
	Require2FA                 *string `json:"require_2fa,omitempty"` // "off", "everyone" or "admins"
	PasswordMinLength          *int    `json:"password_min_length,omitempty"`
	PasswordMinScore           *int    `json:"password_min_score,omitempty"`
	MaxLoginAttempts           *int    `json:"max_login_attempts,omitempty"`
	MaxLoginAttemptsPerAddress *int    `json:"max_login_attempts_per_address,omitempty"`
	LoginWindow                *string `json:"login_window,omitempty"`
	AccountLockoutFailures     *int    `json:"account_lockout_failures,omitempty"`
	AccountLockoutWait         *string `json:"account_lockout_wait,omitempty"`
	AccountLockoutMaxWait      *string `json:"account_lockout_max_wait,omitempty"`
	AccountLockoutReset        *string `json:"account_lockout_reset,omitempty"`
	SessionLifetime            *string `json:"session_lifetime,omitempty"`
	AccessTokenLifetime        *string `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime            *string `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime       *string `json:"refresh_token_lifetime,omitempty"`
	RefreshTokenIdle           *string `json:"refresh_token_idle,omitempty"`
	NotifyNewDevice            *bool   `json:"notify_new_device,omitempty"`
	NotifyPasswordChanged      *bool   `json:"notify_password_changed,omitempty"`
	NotifySecondFactor         *bool   `json:"notify_second_factor,omitempty"`
	NotifyCredentials          *bool   `json:"notify_credentials,omitempty"`
	NotifyTokenExpiry          *bool   `json:"notify_token_expiry,omitempty"`
	NotifyBlocked              *bool   `json:"notify_blocked,omitempty"`
}

// settingsPatchJSON documents PATCH /settings: the keys of settingsJSON,
// each a value of its kind or null (back to the default), so the schema
// leaves their values open.
type settingsPatchJSON struct {
	ProfilesLocked             any `json:"profiles_locked,omitempty"`
	Require2FA                 any `json:"require_2fa,omitempty"`
	PasswordMinLength          any `json:"password_min_length,omitempty"`
	PasswordMinScore           any `json:"password_min_score,omitempty"`
	MaxLoginAttempts           any `json:"max_login_attempts,omitempty"`
	MaxLoginAttemptsPerAddress any `json:"max_login_attempts_per_address,omitempty"`
	LoginWindow                any `json:"login_window,omitempty"`
	AccountLockoutFailures     any `json:"account_lockout_failures,omitempty"`
	AccountLockoutWait         any `json:"account_lockout_wait,omitempty"`
	AccountLockoutMaxWait      any `json:"account_lockout_max_wait,omitempty"`
	AccountLockoutReset        any `json:"account_lockout_reset,omitempty"`
	SessionLifetime            any `json:"session_lifetime,omitempty"`
	AccessTokenLifetime        any `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime            any `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime       any `json:"refresh_token_lifetime,omitempty"`
	RefreshTokenIdle           any `json:"refresh_token_idle,omitempty"`
	NotifyNewDevice            any `json:"notify_new_device,omitempty"`
	NotifyPasswordChanged      any `json:"notify_password_changed,omitempty"`
	NotifySecondFactor         any `json:"notify_second_factor,omitempty"`
	NotifyCredentials          any `json:"notify_credentials,omitempty"`
	NotifyTokenExpiry          any `json:"notify_token_expiry,omitempty"`
	NotifyBlocked              any `json:"notify_blocked,omitempty"`
}

type settingsViewJSON struct {
	Effective settingsJSON `json:"effective"`
	Stored    settingsJSON `json:"stored"`
	Defaults  settingsJSON `json:"defaults"`
}

func settingsOut(st account.Settings) settingsJSON {
	dur := func(d *account.Duration) *string {
		if d == nil {
			return nil
		}
		v := d.String()
		return &v
	}
	return settingsJSON{
		ProfilesLocked: st.ProfilesLocked, Require2FA: st.Require2FA,
		PasswordMinLength: st.PasswordMinLength, PasswordMinScore: st.PasswordMinScore,
		MaxLoginAttempts: st.MaxLoginAttempts, MaxLoginAttemptsPerAddress: st.MaxLoginAttemptsPerAddress,
		LoginWindow: dur(st.LoginWindow), AccountLockoutFailures: st.AccountLockoutFailures,
		AccountLockoutWait: dur(st.AccountLockoutWait), AccountLockoutMaxWait: dur(st.AccountLockoutMaxWait),
		AccountLockoutReset: dur(st.AccountLockoutReset),
		SessionLifetime:     dur(st.SessionLifetime), AccessTokenLifetime: dur(st.AccessTokenLifetime),
		IDTokenLifetime: dur(st.IDTokenLifetime), RefreshTokenLifetime: dur(st.RefreshTokenLifetime),
		RefreshTokenIdle: dur(st.RefreshTokenIdle),
		NotifyNewDevice:  st.NotifyNewDevice, NotifyPasswordChanged: st.NotifyPasswordChanged,
		NotifySecondFactor: st.NotifySecondFactor, NotifyCredentials: st.NotifyCredentials,
		NotifyTokenExpiry: st.NotifyTokenExpiry, NotifyBlocked: st.NotifyBlocked,
	}
}

func settingsViewOut(v account.SettingsView) settingsViewJSON {
	return settingsViewJSON{Effective: settingsOut(v.Effective), Stored: settingsOut(v.Stored), Defaults: settingsOut(v.Defaults)}
}

func (s *Server) apiGetSettings(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	v, etag, err := s.acct.Admin.Settings(r.Context(), a)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, settingsViewOut(v))
	return nil
}

func (s *Server) apiPatchSettings(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	// A map, not settingsJSON: a merge patch tells null (back to the
	// default) from a key left out; account names unknown keys.
	var p account.SettingsPatch
	if ok, err := s.apiDecode(w, r, &p); !ok {
		return err
	}
	v, etag, err := s.acct.Admin.UpdateSettings(r.Context(), a, match, p)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, settingsViewOut(v))
	return nil
}
