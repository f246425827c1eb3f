package account

import (
	"slices"
	"testing"

	"github.com/keyport/keyport/storage"
)

func TestACRFor(t *testing.T) {
	cases := []struct {
		amr, requested []string
		want           string
	}{
		{[]string{"pwd"}, nil, ACRPassword},
		{[]string{"pwd", "otp", "mfa"}, nil, ACRSecondFactor},
		{[]string{"hwk", "mfa"}, nil, ACRPasskey},
		{[]string{"swk", "mfa"}, nil, ACRPasskey},
		// A passkey without user verification is one factor.
		{[]string{"hwk"}, nil, ACRPassword},
		// A passkey as the second factor after a password did not tell
		// whether it verified the person: two factors, not the passkey
		// class.
		{[]string{"pwd", "hwk", "mfa"}, nil, ACRSecondFactor},
		// A passkey without UV followed by an app code: not the passkey
		// class either.
		{[]string{"hwk", "otp", "mfa"}, nil, ACRSecondFactor},
		{[]string{"fed", "otp", "mfa"}, nil, ACRSecondFactor},
		// The strongest requested class met, so the app finds one it
		// asked for.
		{[]string{"hwk", "mfa"}, []string{ACRSecondFactor}, ACRSecondFactor},
		{[]string{"hwk", "mfa"}, []string{ACRPassword, ACRSecondFactor}, ACRSecondFactor},
		{[]string{"pwd", "otp", "mfa"}, []string{ACRPasskey, ACRPassword}, ACRPassword},
		// None met: the class that happened, never a stronger one.
		{[]string{"pwd"}, []string{ACRSecondFactor, ACRPasskey}, ACRPassword},
		{[]string{"pwd"}, []string{"urn:example:unknown"}, ACRPassword},
	}
	for _, c := range cases {
		if got := ACRFor(c.amr, c.requested); got != c.want {
			t.Errorf("ACRFor(%v, %v) = %s, want %s", c.amr, c.requested, got, c.want)
		}
	}
}

func TestKnownACRs(t *testing.T) {
	got := KnownACRs([]string{"urn:example:x", ACRPasskey, ACRPassword, ACRPasskey, ""})
	if !slices.Equal(got, []string{ACRPasskey, ACRPassword}) {
		t.Errorf("KnownACRs = %v", got)
	}
	if KnownACRs([]string{"phr", "urn:example:x"}) != nil {
		t.Error("unknown classes kept")
	}
}

func TestRequestableClaimsAndConsentScopes(t *testing.T) {
	all := storage.Client{}
	limited := storage.Client{AllowedScopes: []string{"openid", "profile"}}
	names := []string{"email", "sub", "preferred_username", "made_up", "email", "groups"}
	if got := RequestableClaims(all, names); !slices.Equal(got, []string{"email", "preferred_username", "groups"}) {
		t.Errorf("an app allowed every scope: %v", got)
	}
	if got := RequestableClaims(limited, names); !slices.Equal(got, []string{"preferred_username"}) {
		t.Errorf("an app limited to profile: %v", got)
	}
	a := storage.AuthRequest{Scopes: []string{"openid", "profile"}, IDTokenClaims: []string{"email", "name"}, UserinfoClaims: []string{"phone_number"}}
	if got := ConsentScopes(a); !slices.Equal(got, []string{"openid", "profile", "email", "phone"}) {
		t.Errorf("ConsentScopes = %v", got)
	}
	u := storage.User{ID: "u1", Username: "cleo", Email: "cleo@example.com"}
	got := NamedClaims(u, []string{"email", "preferred_username", "phone_number"}, "https://id.example")
	if got["email"] != "cleo@example.com" || got["preferred_username"] != "cleo" || got["phone_number"] != nil || got["sub"] != nil {
		t.Errorf("NamedClaims = %v", got)
	}
}
