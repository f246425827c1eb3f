package provider

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func TestCheckAuthorizeParams(t *testing.T) {
	ok := url.Values{
		"client_id": {"app"}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
		"scope": {"openid profile email offline_access groups"}, "prompt": {"login consent"},
		"ui_locales": {"de-DE en"}, "acr_values": {account.ACRSecondFactor + " " + account.ACRPassword},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"},
		// oauth2-proxy's state: a nonce and the return URL.
		"state": {"Xq3vT0n3cRd7YyL0dC9uQw:https://app.example/path?a=1&b=<2>&c=\"3\""}, "nonce": {"n-0S6_WzA2Mj"},
		"login_hint": {"zoë.müller@example.org"},
		// Not stored, so not limited here.
		"id_token_hint": {strings.Repeat("h", 8000)}, "claims": {strings.Repeat("c", 8000)},
	}
	if p, bad := checkAuthorizeParams(ok); bad {
		t.Fatalf("a request real clients send was refused: %v", p.err)
	}
	for _, l := range authorizeParamLimits {
		at := cloneValues(ok)
		at.Set(l.name, strings.Repeat("a", l.max))
		if p, bad := checkAuthorizeParams(at); bad {
			t.Errorf("%s of exactly %d bytes refused: %v", l.name, l.max, p.err)
		}
		over := cloneValues(ok)
		over.Set(l.name, strings.Repeat("a", l.max+1))
		p, bad := checkAuthorizeParams(over)
		if !bad || p.param != l.name || p.err.ErrorType != oidc.InvalidRequest || !strings.Contains(p.err.Description, l.name) {
			t.Errorf("%s of %d bytes: %v %+v, want invalid_request naming it", l.name, l.max+1, bad, p)
		}
		for _, bad := range []string{"a\x00b", "a\nb", "a\x7fb", "a\u0085b", "a\xffb"} {
			v := cloneValues(ok)
			v.Set(l.name, bad)
			if p, refused := checkAuthorizeParams(v); !refused || p.param != l.name {
				t.Errorf("%s = %q accepted", l.name, bad)
			}
		}
	}
	for _, p := range authorizeParamValues {
		for _, good := range p.values {
			v := cloneValues(ok)
			v.Set(p.name, good)
			if pr, bad := checkAuthorizeParams(v); bad {
				t.Errorf("%s = %q refused: %v", p.name, good, pr.err)
			}
		}
		for _, bad := range []string{"plain", "jwt", "form_post.jwt", strings.Repeat("x", 30000)} {
			v := cloneValues(ok)
			v.Set(p.name, bad)
			if pr, refused := checkAuthorizeParams(v); !refused || pr.param != p.name || pr.err.ErrorType != oidc.InvalidRequest {
				t.Errorf("%s = %.20q: %v %+v, want invalid_request naming it", p.name, bad, refused, pr)
			}
		}
	}
	// max_age as zitadel's decoder reads it, an unsigned integer: anything
	// else is refused here, so the app hears of it.
	for maxAge, good := range map[string]bool{"0": true, "3600": true, "18446744073709551615": true,
		"abc": false, "-1": false, "1.5": false, "+5": false, " 5": false, "18446744073709551616": false} {
		v := cloneValues(ok)
		v.Set("max_age", maxAge)
		p, bad := checkAuthorizeParams(v)
		if bad == good || bad && (p.param != "max_age" || p.err.ErrorType != oidc.InvalidRequest) {
			t.Errorf("max_age %q: refused %v %+v", maxAge, bad, p)
		}
	}
	for _, scope := range []string{
		strings.TrimSpace(strings.Repeat("openid ", 33)),
		"openid " + strings.Repeat("s", 129),
		"openid pro\"file",
	} {
		v := cloneValues(ok)
		v.Set("scope", scope)
		if p, bad := checkAuthorizeParams(v); !bad || p.param != "scope" || p.err.ErrorType != oidc.InvalidScope {
			t.Errorf("scope %.40q…: %v %+v, want invalid_scope", scope, bad, p)
		}
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// The bound the flow file's size rests on (config.toml, [limits]): the
// largest request /authorize lets through fits in
// storage.MaxAuthRequestBytes, so the store's backstop never refuses an
// honest one. The test walks every field of storage.AuthRequest: a field
// that comes from the request is filled from the worst parameters the
// checks accept (every one at its limit, of the characters that cost most
// once stored), a field Keyport fills is set to its largest value. A new
// field that is in neither list fails the test until its bound is known.
func TestWorstCaseAuthRequestSize(t *testing.T) {
	// The parameter each field comes from.
	fromRequest := map[string]string{
		"ClientID": "client_id", "RedirectURI": "redirect_uri", "State": "state", "Nonce": "nonce",
		"Scopes": "scope", "ResponseType": "response_type", "ResponseMode": "response_mode",
		"CodeChallenge": "code_challenge", "CodeChallengeMethod": "code_challenge_method",
		"Prompt": "prompt", "MaxAge": "max_age", "LoginHint": "login_hint",
		"ACRValues": "acr_values", "UILocales": "ui_locales",
	}
	// Fields Keyport fills, at their largest: IDs of account.NewID (22
	// characters) or NewOrderedID (26), a session or browser ID of 43,
	// every AMR value, an IPv6 prefix.
	now := time.Now()
	setByKeyport := map[string]any{
		"ID": strings.Repeat("i", 26), "HintUserID": strings.Repeat("u", 26), "LoginHintUserID": strings.Repeat("u", 26),
		"CreatedAt": now, "ExpiresAt": now, "AuthTime": now,
		"BrowserID": strings.Repeat("b", 43), "UserID": strings.Repeat("u", 26), "SessionID": strings.Repeat("s", 43),
		"AMR":       []string{"pwd", "otp", "hwk", "swk", "fed", "mfa", "user", "pin", "sms", "mca"},
		"ConsentOK": true, "CodeIssued": true, "Completed": true,
		"Origin": "ffff:ffff:ffff:ffff::/64", "OriginGroup": "ffff:ffff:ffff::/48",
		// The sign-in's progress (account.Flow): who owes a second factor,
		// and the longest failure the flow records.
		"PendingUserID": strings.Repeat("u", 26), "PendingSince": now,
		// Set for a pushed request until a browser opens it (par.go).
		"PushedUntil":     now,
		"PendingAMR":      []string{"pwd", "otp", "hwk", "swk", "fed", "mfa", "user", "pin", "sms", "mca"},
		"FailCode":        "interaction_required",
		"FailDescription": "the user may not sign in from this network",
		// Only the portal's own sign-in records (no client, none of the
		// request's parameters) hold a return path, bounded by
		// account.MaxReturnTo: never this record.
		"ReturnTo": "",
		// The claims parameter is stored as the names of the claims Keyport
		// releases (account.RequestableClaims): at most all of them.
		"ACREssential": true, "IDTokenClaims": supportedClaims, "UserinfoClaims": supportedClaims,
		"Subject": strings.Repeat(`"`, maxSubject),
		// dpop_jkt is a thumbprint, refused unless exactly its length
		// (validJKT).
		"DPoPJKT": strings.Repeat("j", dpopJKTLen),

		// Custom claims asked for by name add their names and scopes
		// within maxCustomClaimBytes (customclaims.go), as stored.
		"CustomClaimScopes": []string{strings.Repeat("s", maxCustomClaimBytes-3)},

		// Resources registered for the app (resources.go): at most
		// maxResources of maxResourceBytes together, of URI characters,
		// which JSON stores as they are.
		"Resources": slices.Repeat([]string{strings.Repeat("r", maxResourceBytes/maxResources)}, maxResources),
	}

	// The worst parameters: each limited one at its limit, of quotes
	// (stored as \"), lists as one-character items; the longest allowed
	// value of each enumerated one; a redirect URI at its limit (any
	// character it may hold is stored as it is); the longest client ID
	// (account.BuildClient) and max_age.
	worst := url.Values{}
	lists := map[string]bool{"prompt": true, "acr_values": true, "ui_locales": true}
	for _, l := range authorizeParamLimits {
		if lists[l.name] {
			worst.Set(l.name, strings.TrimSpace(strings.Repeat(`" `, l.max/2)))
		} else {
			worst.Set(l.name, strings.Repeat(`"`, l.max))
		}
	}
	for _, p := range authorizeParamValues {
		longest := ""
		for _, v := range p.values {
			if len(v) > len(longest) {
				longest = v
			}
		}
		worst.Set(p.name, longest)
	}
	worst.Set("redirect_uri", "https://app.example/"+strings.Repeat("r", maxRedirectURI-len("https://app.example/")))
	worst.Set("client_id", strings.Repeat("c", 128))
	worst.Set("response_type", "code")
	worst.Set("max_age", "18446744073709551615")
	// 32 scopes (checkScopeTokens), each the longest that zitadel keeps
	// for our clients (op.ValidateAuthReqScopes drops the others).
	longestScope := ""
	for _, sc := range []string{strings.Repeat("s", 128), oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeAddress, oidc.ScopeOfflineAccess, scopeGroups} {
		kept, err := op.ValidateAuthReqScopes(&client{}, []string{sc})
		if err == nil && len(kept) == 1 && len(sc) > len(longestScope) {
			longestScope = sc
		}
	}
	worst.Set("scope", strings.TrimSpace(strings.Repeat(longestScope+" ", 32)))
	if p, bad := checkAuthorizeParams(worst); bad {
		t.Fatalf("the worst-case parameters are refused (%v): the test no longer builds the largest request accepted", p.err)
	}
	if msg := redirectURIProblem(worst.Get("redirect_uri")); msg != "" {
		t.Fatalf("the worst-case redirect URI is refused: %s", msg)
	}

	var a storage.AuthRequest
	v := reflect.ValueOf(&a).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if value, ok := setByKeyport[name]; ok {
			f.Set(reflect.ValueOf(value))
			continue
		}
		param, ok := fromRequest[name]
		if !ok {
			t.Errorf("storage.AuthRequest.%s: no known bound; bound it (authorizeParamLimits) and add it to this test", name)
			continue
		}
		raw := worst.Get(param)
		switch f.Interface().(type) {
		case string:
			f.SetString(raw)
		case []string:
			f.Set(reflect.ValueOf(strings.Fields(raw)))
		case *uint:
			n, err := strconv.ParseUint(raw, 10, 0)
			if err != nil {
				t.Fatalf("%s = %q: %v", param, raw, err)
			}
			u := uint(n)
			f.Set(reflect.ValueOf(&u))
		default:
			t.Errorf("storage.AuthRequest.%s: a %s from %s; teach this test its largest value", name, f.Type(), param)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > storage.MaxAuthRequestBytes {
		t.Errorf("worst-case auth request takes %d bytes, more than the %d the store keeps", buf.Len(), storage.MaxAuthRequestBytes)
	}
	t.Logf("worst-case auth request: %d bytes (the store keeps up to %d)", buf.Len(), storage.MaxAuthRequestBytes)
}

func TestRedirectURIProblem(t *testing.T) {
	for _, ok := range []string{
		"https://app.example/cb", "http://127.0.0.1:4444/callback/cli?x=1&y=%22", "com.example.cli:/cb",
		"https://app.example/rückruf", "https://app.example/" + strings.Repeat("r", maxRedirectURI-len("https://app.example/")),
	} {
		if msg := redirectURIProblem(ok); msg != "" {
			t.Errorf("%.60q refused: %s", ok, msg)
		}
	}
	for bad, want := range map[string]string{
		"https://app.example/" + strings.Repeat("r", maxRedirectURI): "longer",
		"http://user:pw@127.0.0.1:4444/callback/cli":                 "user name",
		"http://" + strings.Repeat("u", 100) + "@127.0.0.1/cb":       "user name",
		"http://127.0.0.1:4444/callback/cli#frag":                    "fragment",
		"http://127.0.0.1:4444/callback/cli#":                        "fragment",
		`https://app.example/"cb"`:                                   "characters",
		`https://app.example/a\b`:                                    "characters",
		"https://app.example/a b":                                    "characters",
		"https://app.example/a\u2028b":                               "characters",
		"https://app.example/a\x00b":                                 "characters",
		"https://app.example/a\xffb":                                 "characters",
	} {
		if msg := redirectURIProblem(bad); !strings.Contains(msg, want) {
			t.Errorf("%.60q: %q, want a refusal naming %q", bad, msg, want)
		}
	}
}

func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":                  "192.0.2.7",
		"::ffff:192.0.2.7":           "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":       "2001:db8:1:2::/64",
		"2001:db8:1:3::1":            "2001:db8:1:3::/64",
		"fe80::1%eth0":               "fe80::/64",
		"":                           "",
		"not an address":             "",
		"2001:db8:1:2:3:4:5:6:7:8:9": "",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1::/48",
		"2001:db8:1:ff::1":     "2001:db8:1::/48",
		"2001:db8:2::1":        "2001:db8:2::/48",
		"":                     "",
	} {
		if got := originGroupOf(in); got != want {
			t.Errorf("originGroupOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFormProblemCaseVariants: zitadel's decoder matches parameter names
// ignoring case, so a name Keyport checks must not slip past it in
// another case, or twice in two cases.
func TestFormProblemCaseVariants(t *testing.T) {
	// Every parameter zitadel decodes into an authorization request is
	// one Keyport refuses in another case.
	ty := reflect.TypeFor[oidc.AuthRequest]()
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("schema"), ",")
		if name != "" && !slices.Contains(caseSensitiveParams, name) {
			t.Errorf("oidc.AuthRequest decodes %q, missing from caseSensitiveParams", name)
		}
	}
	base := "client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid"
	for _, tc := range []struct {
		query string
		bad   bool
	}{
		{base, false},
		{base + "&kc_idp_hint=x&appState=y", false}, // names Keyport does not know, in any case
		{base + "&CLIENT_ID=other", true},
		{base + "&Client_Id=app", true},
		{base + "&STATE=x", true},
		{base + "&%C5%BFtate=x", true}, // "ſtate": ſ folds with s
		{base + "&prompt=none&Prompt=login", true},
		{base + "&request_URI=urn%3Ax", true},
	} {
		r := httptest.NewRequest("GET", "/authorize?"+tc.query, nil)
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		if got := formProblem(r, "/authorize"); (got != "") != tc.bad {
			t.Errorf("%s: formProblem %q, want a refusal: %v", tc.query, got, tc.bad)
		}
	}
}
