package web

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

// Languages the portal speaks. English is the source language: a template
// writes {{t .Lang "English text"}} and the catalogs map that text to the
// other languages. A missing translation falls back to the English text,
// and TestGermanCatalogComplete makes sure none is missing.
var Languages = []language.Tag{language.English, language.German}

// LanguageNames are shown in the language picker, each in its own language.
var LanguageNames = map[string]string{"en": "English", "de": "Deutsch"}

// catalogs maps a language to English text → translation. Each area of the
// portal keeps its strings in its own file (i18n_*.go) and they are merged
// here, so areas never edit one shared table.
var catalogs = map[string]map[string]string{
	"de": merge(
		deCore, deProfile, deSecurity, deTwoFactor, dePasskeys, deAccess, deAdmin, deAdminDirectories, deAdminUpstreams, dePolicy, deWeb, deUI, deThrottle,
		// One line per area added since, so that areas added at the same
		// time do not edit the same line.
		deConsole,
		deConsoleAudit,
		deUserAdmin,
		deConsoleUsers,
		deApps,
		deConsoleApps,
		deConsoleGroups,
		deSelfService,
		deConsoleSettings,
		deSystem,
		deMailFlows,
		deLogoutApps,
		deClientAuth,
		deWebhooks,
		deConsoleDeliveries,
		deConsoleWebhooks,
		deAuthRequest,
		deSigningAlgorithms,
		deDevice,
		deFeatures,
		deTokenExchange,
		deDPoP,
		deRegistration,
		deCustomClaims,
		deCustomClaimsConsole,
		deResources,
		dePairwise,
		deFormats,
	),
}

func merge(parts ...map[string]string) map[string]string {
	out := make(map[string]string)
	for _, p := range parts {
		maps.Copy(out, p)
	}
	return out
}

var languageMatcher = language.NewMatcher(Languages)

// SupportedLanguage reports whether the portal has a translation for tag
// ("en", "de").
func SupportedLanguage(tag string) bool {
	return tag == "en" || catalogs[tag] != nil
}

// translate returns text in lang, formatting args into it when given.
func Translate(lang, text string, args ...any) string {
	if tr, ok := catalogs[lang][text]; ok && tr != "" {
		text = tr
	}
	if len(args) > 0 {
		return fmt.Sprintf(text, args...)
	}
	return text
}

// pickLanguage chooses the language of a page: the signed-in user's profile
// setting wins, then the browser's Accept-Language, then English.
func PickLanguage(r *http.Request, userLocale string) string {
	if base := BaseLanguage(userLocale); SupportedLanguage(base) {
		return base
	}
	tags, _, err := language.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
	if err != nil || len(tags) == 0 {
		return "en"
	}
	_, i, conf := languageMatcher.Match(tags...)
	if conf == language.No {
		return "en"
	}
	b, _ := Languages[i].Base()
	return b.String()
}

// uiLocalesLanguage is the language an OpenID Connect ui_locales parameter
// asks for (BCP 47 tags separated by spaces, the preferred first) among
// those the portal speaks, or "" when it names none of them. Only the
// first ten tags count.
func UILocalesLanguage(uiLocales string) string {
	var tags []language.Tag
	for i, f := range strings.Fields(uiLocales) {
		if i == 10 {
			break
		}
		if tag, err := language.Parse(f); err == nil {
			tags = append(tags, tag)
		}
	}
	if len(tags) == 0 {
		return ""
	}
	_, i, conf := languageMatcher.Match(tags...)
	if conf == language.No {
		return ""
	}
	b, _ := Languages[i].Base()
	return b.String()
}

// baseLanguage turns "de-CH" or "de_CH" into "de".
func BaseLanguage(locale string) string {
	locale = strings.ToLower(strings.TrimSpace(locale))
	if i := strings.IndexAny(locale, "-_"); i >= 0 {
		locale = locale[:i]
	}
	return locale
}

// languageOptions lists the picker's choices, sorted by code.
func LanguageOptions() []string {
	return slices.Sorted(maps.Keys(LanguageNames))
}
