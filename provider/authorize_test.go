package provider

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
)

func TestCheckAuthorizeParams(t *testing.T) {
	ok := url.Values{
		"client_id": {"app"}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"},
		"scope": {"openid profile email offline_access groups"}, "prompt": {"login consent"},
		"ui_locales": {"de-DE en"}, "acr_values": {acrMultiFactor + " " + acrSingleFactor},
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

// The bound the flow file's size rests on (config.toml, [limits]): a
// request whose every limited parameter is as long as allowed, made of the
// characters that cost most once stored, fits in maxStoredAuthRequest. It is
// encoded as the bolt store encodes it (no HTML escaping), with a redirect
// URI of 256 bytes.
func TestWorstCaseAuthRequestSize(t *testing.T) {
	const maxStoredAuthRequest = 16 << 10
	limit := map[string]int{}
	for _, l := range authorizeParamLimits {
		limit[l.name] = l.max
	}
	worst := func(name string) string { return strings.Repeat(`"`, limit[name]) } // stored as \"
	var scopes []string
	for range 32 {
		scopes = append(scopes, oidc.ScopeOfflineAccess) // the longest scope that survives zitadel's filter
	}
	words := func(name string, word string) []string {
		var out []string
		for n := 0; n+len(word) <= limit[name]; n += len(word) + 1 {
			out = append(out, strings.Repeat(`"`, len(word)))
		}
		return out
	}
	maxAge := uint(1 << 31)
	now := time.Now()
	a := storage.AuthRequest{
		ID: strings.Repeat("i", 26), ClientID: strings.Repeat("c", 128), RedirectURI: "https://app.example/" + strings.Repeat("r", 236),
		State: worst("state"), Nonce: worst("nonce"), Scopes: scopes,
		ResponseType: "code", ResponseMode: "form_post",
		CodeChallenge: worst("code_challenge"), CodeChallengeMethod: "S256",
		Prompt: words("prompt", "x"), MaxAge: &maxAge, LoginHint: worst("login_hint"),
		HintUserID: strings.Repeat("u", 26), ACRValues: words("acr_values", "x"), UILocales: words("ui_locales", "x"),
		CreatedAt: now, ExpiresAt: now, BrowserID: strings.Repeat("b", 43),
		UserID: strings.Repeat("u", 26), SessionID: strings.Repeat("s", 43), AuthTime: now,
		AMR: []string{"pwd", "otp", "hwk", "mfa"}, ConsentOK: true, CodeIssued: true, Completed: true,
		Origin: "ffff:ffff:ffff:ffff::/64",
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > maxStoredAuthRequest {
		t.Errorf("worst-case auth request takes %d bytes, more than the %d the documented bound assumes", buf.Len(), maxStoredAuthRequest)
	}
	t.Logf("worst-case auth request: %d bytes", buf.Len())
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
}
