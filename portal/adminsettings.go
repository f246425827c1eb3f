package portal

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// The console's settings page: the runtime settings (account.Settings),
// each with config.toml's default beside it; an empty value means "use
// the default". Changes go through account.AdminService, as the API's do.
func (s *Server) registerAdminSettingsPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/settings", s.adminSettingsPage)
	t.add(levelAdmin, "POST", "/admin/settings", s.adminSaveSettings)
}

// settingLabels name the settings on the page (translated there).
var settingLabels = map[string]string{
	"profiles_locked":                "Lock profiles",
	"require_2fa":                    "Require two-factor authentication",
	"password_min_length":            "Minimum password length",
	"password_min_score":             "Minimum password strength (0–4)",
	"max_login_attempts":             "Failed sign-ins per account and address",
	"max_login_attempts_per_address": "Failed sign-ins per address",
	"login_window":                   "Window the failures are counted in",
	"account_lockout_failures":       "Failures before an account must wait (0: never)",
	"account_lockout_wait":           "First wait",
	"account_lockout_max_wait":       "Longest wait",
	"account_lockout_reset":          "Failures forgotten after",
	"session_lifetime":               "Sign-in lasts (session lifetime)",
	"access_token_lifetime":          "Access token lifetime",
	"id_token_lifetime":              "ID token lifetime",
	"refresh_token_lifetime":         "Refresh tokens end after (from sign-in)",
	"refresh_token_idle":             "Refresh tokens end when unused for",
	"notify_new_device":              "Mail users about a sign-in from a new device",
	"notify_password_changed":        "Mail users when their password changes",
	"notify_second_factor":           "Mail users when a second factor is added or removed",
	"notify_credentials":             "Mail users about a new API token or app password",
	"notify_token_expiry":            "Mail users about an API token expiring within 7 days",
	"notify_blocked":                 "Mail users when their account is blocked",
}

// settingWords are how the page says the values of checkboxes and choices.
var settingWords = map[string]string{
	"true": "On", "false": "Off",
	account.Require2FAOff: "Off", account.Require2FAEveryone: "Everyone", account.Require2FAAdmins: "Administrators only",
}

type settingOption struct{ Value, Label string }

// settingRow is one setting on the form: Value is what is stored ("" for
// the default), Default and Effective as the page says them.
type settingRow struct {
	Key, Label         string
	Value              string
	Default, Effective string
	Options            []settingOption // a select when set, else a text field
}

type adminSettingsData struct {
	web.Base
	Rows   []settingRow
	ETag   string
	Notice string
	Error  string
	Field  string
}

// settingWord is a value as the page shows it: a word for checkboxes and
// choices, else as written.
func settingWord(v string) string {
	if w, ok := settingWords[v]; ok {
		return w
	}
	return v
}

// showAdminSettings renders the page; posted, when not nil, are the
// values the admin sent (shown again with a refusal).
func (s *Server) showAdminSettings(w http.ResponseWriter, r *http.Request, m me, status int, d *adminSettingsData, posted map[string]string) error {
	v, etag, err := s.acct.Admin.Settings(r.Context(), consoleActor(r, m))
	if err != nil {
		return err
	}
	d.Base = s.web.Base(r, &m.User, "Settings")
	d.Nav, d.AdminSection = "admin", "settings"
	d.ETag = etag
	for _, f := range account.SettingFields {
		row := settingRow{Key: f.Key, Label: settingLabels[f.Key], Value: v.Stored.SettingText(f.Key),
			Default: settingWord(v.Defaults.SettingText(f.Key)), Effective: settingWord(v.Effective.SettingText(f.Key))}
		if posted != nil {
			row.Value = posted[f.Key]
		}
		switch f.Kind {
		case account.SettingBool:
			row.Options = []settingOption{{"true", "On"}, {"false", "Off"}}
		case account.SettingChoice:
			for _, c := range f.Choices {
				row.Options = append(row.Options, settingOption{c, settingWord(c)})
			}
		}
		d.Rows = append(d.Rows, row)
	}
	s.web.Render(w, r, status, "admin_settings", d)
	return nil
}

func (s *Server) adminSettingsPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminSettingsData{}
	if r.URL.Query().Get("done") == "saved" {
		d.Notice = "The settings were saved. They are in force now."
	}
	return s.showAdminSettings(w, r, m, http.StatusOK, d, nil)
}

// settingValue turns a form's text into the setting's JSON: null for ""
// (the default), a number or a boolean when the text is one, else a
// string, which the rules refuse by name when the setting wants another
// kind.
func settingValue(kind account.SettingKind, text string) json.RawMessage {
	var v any = text
	switch {
	case text == "":
		v = nil
	case kind == account.SettingInt:
		if n, err := strconv.Atoi(text); err == nil {
			v = n
		}
	case kind == account.SettingBool:
		if b, err := strconv.ParseBool(text); err == nil {
			v = b
		}
	}
	b, _ := json.Marshal(v) // nil, an int, a bool or a string always encode
	return b
}

func (s *Server) adminSaveSettings(w http.ResponseWriter, r *http.Request, m me) error {
	patch := account.SettingsPatch{}
	posted := map[string]string{}
	for _, f := range account.SettingFields {
		text := strings.TrimSpace(r.PostFormValue(f.Key))
		posted[f.Key] = text
		patch[f.Key] = settingValue(f.Kind, text)
	}
	_, _, err := s.acct.Admin.UpdateSettings(r.Context(), consoleActor(r, m), r.PostFormValue("etag"), patch)
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid && code != account.PreconditionFailed {
			return err
		}
		lang := web.PickLanguage(r, m.User.Locale)
		d := &adminSettingsData{Error: errorText(lang, err), Field: account.ErrorField(err)}
		if label, ok := settingLabels[d.Field]; ok && lang != "en" {
			// The rules' bounds are in English; name the setting in the
			// admin's language before them.
			d.Error = web.Translate(lang, "Check “%s”:", web.Translate(lang, label)) + " " + d.Error
		}
		if code == account.PreconditionFailed {
			posted = nil // show what is stored now
		}
		return s.showAdminSettings(w, r, m, statusFor(code), d, posted)
	}
	http.Redirect(w, r, "/admin/settings?done=saved", http.StatusSeeOther)
	return nil
}
