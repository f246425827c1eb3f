package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// Resource indicators (RFC 8707). An app names the resource servers it
// wants an access token for with the resource parameter, which may
// repeat, at /authorize (also pushed, and inside a request object) and at
// the token endpoint. Each value must be an absolute URI without a
// fragment and registered for the app (storage.Client.Resources);
// anything else is invalid_target (§2), sent to the app's redirect URI
// from /authorize and answered with 400 at the token endpoint.
//
// What a sign-in asked for is stored with it (storage.AuthRequest) and
// given to its code and refresh family (storage.RefreshToken); a token
// request may name a part of it, never more (§2.2), and names all of it
// when it names none. The device code grant asks at the device
// authorization endpoint (device.go), and its request
// (storage.DeviceAuthorization) holds them as a sign-in does.
// client_credentials asks at the token endpoint itself. The access token is for the resources: its
// audience (the JWT's aud, introspection's aud for an opaque one) lists
// them instead of the app; the app stays in client_id. With no resource
// asked for, the token is the app's, as before. The ID token's aud is
// always the app. A resource an admin takes from the app is no longer
// issued to its grants (liveResources), and a token for other resources
// reads neither /userinfo (readsUserinfo) nor the management API.

// Bounds of the resource values of one request. Resource URIs are short
// ("https://api.example.com/orders"); these leave room for many times
// that while a stored sign-in stays within storage.MaxAuthRequestBytes
// (TestWorstCaseAuthRequestSize).
const (
	maxResources     = 8
	maxResourceBytes = 512 // all the values of a request together
)

// invalidTarget is RFC 8707 §2's error.
func invalidTarget(format string, args ...any) *oidc.Error {
	return tokenExchangeError("invalid_target", format, args...)
}

// resourceProblem checks the resource values of a request, whoever the
// app: their number, size and form.
func resourceProblem(values []string) *oidc.Error {
	if len(values) > maxResources {
		return invalidTarget("at most %d resource values", maxResources)
	}
	total := 0
	for _, v := range values {
		total += len(v)
		if total > maxResourceBytes {
			return invalidTarget("the resource values are longer than %d bytes together", maxResourceBytes)
		}
		if !account.ResourceURI(v) {
			return invalidTarget("resource must be an absolute URI without a fragment")
		}
	}
	return nil
}

// grantResources checks the resources a request asks app c for, and
// returns them without repeats: each one must be registered for the app.
func grantResources(c storage.Client, requested []string) ([]string, *oidc.Error) {
	if err := resourceProblem(requested); err != nil {
		return nil, err
	}
	for _, v := range requested {
		if !slices.Contains(c.Resources, v) {
			return nil, invalidTarget("this client may not ask for the resource %q", truncate(v, 128))
		}
	}
	if len(requested) == 0 {
		return nil, nil
	}
	return distinct(requested), nil
}

// narrowResources is the part of the granted resources a token request
// asks for: all of them when it names none, and invalid_target when it
// names one not granted (RFC 8707 §2.2).
func narrowResources(granted, requested []string) ([]string, *oidc.Error) {
	if err := resourceProblem(requested); err != nil {
		return nil, err
	}
	if len(requested) == 0 {
		return granted, nil
	}
	for _, v := range requested {
		if !slices.Contains(granted, v) {
			return nil, invalidTarget("the resource %q was not granted", truncate(v, 128))
		}
	}
	return distinct(requested), nil
}

// liveResources is the part of a grant's resources (a sign-in's, a
// refresh family's) that app c may still ask for, narrowed as
// narrowResources does. An admin who takes a resource from the app stops
// the app's grants from reaching it at their next token, as refreshes
// apply the app's scopes as they are now (allowedScopes); the grant keeps
// it, so giving it back restores it. A grant for resources none of which
// is left gets no token: one for the app itself would be for an audience
// the grant never had.
func liveResources(c storage.Client, granted, requested []string) ([]string, *oidc.Error) {
	live := slices.DeleteFunc(slices.Clone(granted), func(v string) bool { return !slices.Contains(c.Resources, v) })
	if len(granted) > 0 && len(live) == 0 {
		if err := resourceProblem(requested); err != nil {
			return nil, err
		}
		return nil, invalidTarget("the resources of this grant are no longer registered for this client")
	}
	return narrowResources(live, requested)
}

// accessAudience is the audience of an access token for app clientID:
// the resources, or the app itself when there are none.
func accessAudience(clientID string, resources []string) []string {
	if len(resources) == 0 {
		return []string{clientID}
	}
	return slices.Clone(resources)
}

// resourcesNote carries the resource values of an /authorize, pushed or
// token request from the middleware (which has the form) to the op.Storage
// callbacks (which zitadel hands only its own parsed request), and back
// the refusal of a code or refresh grant: zitadel answers any error of
// AuthRequestByCode and TokenRequestByRefreshToken as invalid_grant, so
// the middleware puts RFC 8707's error back (answerTargetRefusal).
type resourcesNote struct {
	values  []string
	refused *oidc.Error
}

type resourcesKey struct{}

func withResources(ctx context.Context, values []string) context.Context {
	return context.WithValue(ctx, resourcesKey{}, &resourcesNote{values: slices.Clone(values)})
}

func resourcesFrom(ctx context.Context) []string {
	if n, ok := ctx.Value(resourcesKey{}).(*resourcesNote); ok {
		return n.values
	}
	return nil
}

// refuseTarget notes err, an invalid_target refusal of a token request,
// for answerTargetRefusal, and returns it.
func refuseTarget(ctx context.Context, err *oidc.Error) *oidc.Error {
	if n, ok := ctx.Value(resourcesKey{}).(*resourcesNote); ok {
		n.refused = err
	}
	return err
}

// answerTargetRefusal replaces zitadel's answer to a token request that
// refuseTarget refused with the refusal itself (400 invalid_target).
func answerTargetRefusal(r *http.Request, rec *recorder) {
	n, ok := r.Context().Value(resourcesKey{}).(*resourcesNote)
	if !ok || n.refused == nil || rec.status < 400 {
		return
	}
	rec.body.Reset()
	rec.header.Set("Content-Type", "application/json")
	rec.status = http.StatusBadRequest
	_ = json.NewEncoder(&rec.body).Encode(map[string]string{"error": string(n.refused.ErrorType), "error_description": n.refused.Description})
}

// jwtAudience hands the resources of a token request to zitadel's JWT
// access token, and only to it. zitadel builds the access token and the
// ID token of one response from the same request, both with its
// GetAudience: first the access token's record (CreateAccessToken or
// CreateAccessAndRefreshTokens, here), then the JWT (op.CreateJWT, which
// asks GetAudience once), then the ID token, whose aud must stay the app.
// So the record's creation sets the hand-off, for apps with JWT access
// tokens only (opaque tokens never ask), and GetAudience takes it once.
type jwtAudience struct{ once []string }

// set arms the hand-off with audience.
func (h *jwtAudience) set(audience []string) { h.once = audience }

// take returns the armed audience once, else fallback.
func (h *jwtAudience) take(fallback []string) []string {
	if a := h.once; a != nil {
		h.once = nil
		return a
	}
	return fallback
}

// resourceAudience makes t, the access-token record of req, a token for
// the resources req asks for, and arms the hand-off of its audience to
// zitadel's JWT when the app gets JWT access tokens (jwtAudience).
func (s *opStorage) resourceAudience(ctx context.Context, req any, t *storage.AccessToken) {
	var (
		resources []string
		hand      *jwtAudience
	)
	switch r := req.(type) {
	case *authRequest:
		resources, hand = r.resources, &r.aud
	case *refreshRequest:
		resources, hand = r.resources, &r.aud
	case *deviceRequest:
		resources, hand = r.resources, &r.aud
	case *machineRequest:
		resources = r.resources // GetAudience says it: no ID token to keep apart
	}
	if len(resources) == 0 {
		return
	}
	t.Audience = slices.Clone(resources)
	if hand == nil {
		return
	}
	if c, err := s.getClient(ctx, t.ClientID); err == nil && c.AccessTokenJWT {
		hand.set(t.Audience)
	}
}

// readsUserinfo tells whether access token t may read /userinfo, the
// provider's own protected resource (OpenID Connect Core §5.3): a token
// for its app, or exchanged for an app (tokenexchange.go), which is an
// OpenID Connect client too. A token only for other resources is theirs:
// one of them must not read the person's claims with it (RFC 8707 §3,
// "an audience-restricted access token that is legitimately presented to
// a resource cannot then be taken by that resource and presented
// elsewhere"), as the management API refuses it (accesstokens.go).
func (s *opStorage) readsUserinfo(ctx context.Context, t storage.AccessToken) bool {
	if slices.Contains(t.Audience, t.ClientID) {
		return true
	}
	if len(t.Actors) == 0 {
		return false // a grant's token for resources (resourceAudience)
	}
	return slices.ContainsFunc(t.Audience, func(a string) bool {
		_, err := s.getClient(ctx, a)
		return err == nil
	})
}
