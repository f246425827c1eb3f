package account

import (
	"context"
	"slices"

	"github.com/keyport/keyport/storage"
)

// Authentication context classes (OIDC Core §2, acr) Keyport can meet, in
// rising strength. The first two are the URNs Keyport always put in ID
// tokens and listed in discovery, so apps that ask for them keep working;
// the passkey class follows their scheme rather than a name from another
// vocabulary (the EAP profile's "phr" says phishing-resistant, not
// "verified the person on the device").
const (
	// ACRPassword: one factor (a password, an upstream provider, or a
	// passkey without user verification).
	ACRPassword = "urn:keyport:acr:1fa"
	// ACRSecondFactor: two factors, e.g. a password and an app code or a
	// security key.
	ACRSecondFactor = "urn:keyport:acr:2fa"
	// ACRPasskey: a passkey that verified the person (PIN or biometrics,
	// the UV flag) as the sign-in itself: two factors in one phishing-
	// resistant step.
	ACRPasskey = "urn:keyport:acr:passkey"
)

// ACRValues are the classes Keyport offers, weakest first; discovery
// lists them as acr_values_supported.
var ACRValues = []string{ACRPassword, ACRSecondFactor, ACRPasskey}

// acrLevel is the strength of class acr (its index in ACRValues), -1 for a
// class Keyport does not know.
func acrLevel(acr string) int { return slices.Index(ACRValues, acr) }

// amrLevel is the strength of a sign-in whose amr (RFC 8176) is amr. A
// passkey with user verification as the first step gives ["hwk", "mfa"]
// (or "swk"); a passkey shown as the second factor after a password
// ("pwd", "hwk", "mfa") did not tell whether it verified the person, so it
// counts as two factors only.
func amrLevel(amr []string) int {
	switch {
	case len(amr) == 2 && (amr[0] == "hwk" || amr[0] == "swk") && amr[1] == "mfa":
		return acrLevel(ACRPasskey)
	case slices.Contains(amr, "mfa"):
		return acrLevel(ACRSecondFactor)
	}
	return acrLevel(ACRPassword)
}

// acrFloor is the strength of the weakest class Keyport knows among
// values: a sign-in at least as strong meets one of them (ACRFor). -1
// when values names none.
func acrFloor(values []string) int {
	floor := -1
	for _, v := range values {
		if l := acrLevel(v); l >= 0 && (floor < 0 || l < floor) {
			floor = l
		}
	}
	return floor
}

// KnownACRs keeps of values those Keyport can meet, in their order,
// without repeats: what a request asks for that Keyport could honour.
func KnownACRs(values []string) []string {
	var out []string
	for _, v := range values {
		if acrLevel(v) >= 0 && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// ACRFor is the acr of a sign-in with amr for a request that asked for
// requested (known classes only): the strongest requested class the
// sign-in meets, so an app finds in the ID token a value it asked for
// (OIDC Core §5.5.1.1); else the class the sign-in actually met. Never a
// class stronger than what happened.
func ACRFor(amr, requested []string) string {
	met := amrLevel(amr)
	best := -1
	for _, v := range requested {
		if l := acrLevel(v); l >= 0 && l <= met && l > best {
			best = l
		}
	}
	if best >= 0 {
		return ACRValues[best]
	}
	return ACRValues[met]
}

// acrTarget is the class the sign-in on record a must reach for user u:
// the strongest class the request asks for that u can meet (a second
// factor needs one set up, a passkey one registered), -1 when the request
// asks for none. unmet: the request's acr is essential and u can meet none
// of the classes it names.
func (f *Flow) acrTarget(ctx context.Context, a storage.AuthRequest, u storage.User) (target int, unmet bool, err error) {
	target = -1
	if len(a.ACRValues) == 0 {
		return target, false, nil
	}
	can := acrLevel(ACRPassword)
	if has, err := f.credentials.HasSecondFactor(ctx, u); err != nil {
		return target, false, err
	} else if has {
		can = acrLevel(ACRSecondFactor)
	}
	if f.credentials.PasskeysAvailable() {
		keys, err := f.credentials.Passkeys(ctx, u.ID)
		if err != nil {
			return target, false, err
		}
		if len(keys) > 0 {
			can = acrLevel(ACRPasskey)
		}
	}
	for _, v := range a.ACRValues {
		if l := acrLevel(v); l >= 0 && l <= can && l > target {
			target = l
		}
	}
	return target, a.ACREssential && target < 0, nil
}

// errUnmetACR is the OAuth error of a request whose essential acr cannot
// be met (OpenID Connect Core Error Code unmet_authentication_requirements
// 1.0; OIDC Core §5.5.1.1 treats it as a failed authentication).
const errUnmetACR = "unmet_authentication_requirements"
