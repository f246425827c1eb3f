package provider

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyport/keyport/storage"
)

// The bounds and rules of resource values (RFC 8707 §2) at their edges.
func TestResourceValues(t *testing.T) {
	at := func(n, size int) []string { // n values of size bytes together
		out := make([]string, n)
		for i := range out {
			out[i] = "urn:r" + strings.Repeat("x", size/n-len("urn:r"))
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		values []string
		ok     bool
	}{
		{"none", nil, true},
		{"eight", at(maxResources, 8*16), true},
		{"nine", at(maxResources+1, 9*16), false},
		{"512 bytes together", at(4, maxResourceBytes), true},
		{"513 bytes together", append(at(4, maxResourceBytes), "u:"), false},
		{"URN", []string{"urn:example:a"}, true},
		{"relative", []string{"/a"}, false},
		{"scheme-relative", []string{"//a.example/"}, false},
		{"fragment", []string{"https://a.example/#x"}, false},
		{"empty fragment", []string{"https://a.example/#"}, false},
		{"empty", []string{""}, false},
		{"space", []string{"https://a.example/ x"}, false},
		{"control", []string{"https://a.example/\x00"}, false},
		{"not UTF-8", []string{"https://a.example/\xff"}, false},
	} {
		if err := resourceProblem(tc.values); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", tc.name, err, tc.ok)
		} else if err != nil && err.ErrorType != "invalid_target" {
			t.Errorf("%s: %s, want invalid_target", tc.name, err.ErrorType)
		}
	}

	app := storage.Client{ID: "app", Resources: []string{"https://a.example/", "urn:b"}}
	if got, err := grantResources(app, []string{"urn:b", "https://a.example/", "urn:b"}); err != nil || !slices.Equal(got, []string{"urn:b", "https://a.example/"}) {
		t.Errorf("grant registered: %v %v", got, err)
	}
	if _, err := grantResources(app, []string{"urn:c"}); err == nil || err.ErrorType != "invalid_target" {
		t.Errorf("grant unregistered: %v", err)
	}
	granted := []string{"https://a.example/", "urn:b"}
	if got, err := narrowResources(granted, nil); err != nil || !slices.Equal(got, granted) {
		t.Errorf("narrow to nothing named: %v %v, want all granted", got, err)
	}
	if got, err := narrowResources(granted, []string{"urn:b"}); err != nil || !slices.Equal(got, []string{"urn:b"}) {
		t.Errorf("narrow to one: %v %v", got, err)
	}
	if _, err := narrowResources(granted, []string{"urn:b", "urn:c"}); err == nil || err.ErrorType != "invalid_target" {
		t.Errorf("widen: %v", err)
	}
	if _, err := narrowResources(nil, []string{"urn:b"}); err == nil {
		t.Error("a family granted nothing narrowed to a resource")
	}
}

// A grant's resources an admin took from the app are not issued; with
// none left, nothing is, not even a token for the app itself.
func TestLiveResources(t *testing.T) {
	granted := []string{"https://a.example/", "urn:b"}
	app := storage.Client{ID: "app", Resources: []string{"urn:b", "urn:c"}}
	if got, err := liveResources(app, granted, nil); err != nil || !slices.Equal(got, []string{"urn:b"}) {
		t.Errorf("nothing named: %v %v, want the one still registered", got, err)
	}
	if _, err := liveResources(app, granted, []string{"https://a.example/"}); err == nil || err.ErrorType != "invalid_target" {
		t.Errorf("naming the one taken: %v, want invalid_target", err)
	}
	if _, err := liveResources(app, granted, []string{"urn:c"}); err == nil || err.ErrorType != "invalid_target" {
		t.Errorf("naming one registered but never granted: %v, want invalid_target", err)
	}
	none := storage.Client{ID: "app"}
	if got, err := liveResources(none, granted, nil); err == nil || err.ErrorType != "invalid_target" || got != nil {
		t.Errorf("every one taken: %v %v, want invalid_target", got, err)
	}
	if got, err := liveResources(none, nil, nil); err != nil || got != nil {
		t.Errorf("a grant without resources: %v %v, want none and no error", got, err)
	}
	if _, err := liveResources(none, granted, []string{"/relative"}); err == nil || err.ErrorType != "invalid_target" {
		t.Errorf("malformed: %v", err)
	}
}

// The JWT hand-off gives the audience once: to the access token, never
// to the ID token zitadel builds next from the same request.
func TestJWTAudienceOnce(t *testing.T) {
	r := &authRequest{a: storage.AuthRequest{ClientID: "app"}}
	if got := r.GetAudience(); !slices.Equal(got, []string{"app"}) {
		t.Fatalf("unarmed: %v", got)
	}
	r.aud.set([]string{"urn:b"})
	if got := r.GetAudience(); !slices.Equal(got, []string{"urn:b"}) {
		t.Errorf("armed: %v", got)
	}
	if got := r.GetAudience(); !slices.Equal(got, []string{"app"}) {
		t.Errorf("after the hand-off: %v, want the app", got)
	}
}
