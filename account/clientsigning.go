package account

import (
	"context"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

// SigningAlgorithms are the JWS algorithms Keyport signs tokens with
// ([keys] algorithm), and so the ones an app may ask its ID tokens to be
// signed with (id_token_signed_response_alg, OpenID Connect Dynamic Client
// Registration 1.0 §2).
var SigningAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// CheckSigningAlgorithm checks an app's id_token_signed_response_alg: ""
// (the server's [keys] algorithm) or one of SigningAlgorithms, spelled as
// RFC 7518 and RFC 8037 spell them. "none" is refused: Keyport never
// issues unsigned ID tokens.
func CheckSigningAlgorithm(field, alg string) *Error {
	if alg == "" || slices.Contains(SigningAlgorithms, alg) {
		return nil
	}
	return FieldErrorf(field, "Unknown signing algorithm %q (use %s, or leave it empty for the server's default).", clip(alg, 64), strings.Join(SigningAlgorithms, ", "))
}

// applySigning sets the signing algorithm p changes on c.
func (p ClientPatch) applySigning(c *storage.Client) {
	if p.IDTokenSignedResponseAlg != nil {
		c.IDTokenSignedResponseAlg = *p.IDTokenSignedResponseAlg
	}
	if p.UserinfoSignedResponseAlg != nil {
		c.UserinfoSignedResponseAlg = *p.UserinfoSignedResponseAlg
	}
}

// SetSigningKeys gives the service what makes sure a signing key of an
// algorithm exists (provider.KeyManager.EnsureAlgorithm), so that an app
// given an algorithm has its key published in JWKS right away rather than
// at its first token. Call it before serving; nil (the default) leaves
// that to the first token.
func (s *ClientService) SetSigningKeys(ensure func(ctx context.Context, alg string) error) {
	s.ensureKey = ensure
}

// ensureSigningKey makes the keys of c's algorithms, after c was stored.
// A failure is logged, not returned: the app is stored, and its first
// token makes the key if this could not.
func (s *ClientService) ensureSigningKey(ctx context.Context, c storage.Client) {
	if s.ensureKey == nil {
		return
	}
	for _, alg := range ClientSigningAlgorithms([]storage.Client{c}) {
		if err := s.ensureKey(ctx, alg); err != nil {
			s.log.ErrorContext(ctx, "make the signing key of an app's algorithm", "client_id", c.ID, "alg", alg, "err", err)
		}
	}
}

// ClientSigningAlgorithms are the algorithms clients ask for, each once,
// for provider.KeyManager.SetAlgorithmsInUse.
func ClientSigningAlgorithms(clients []storage.Client) []string {
	var algs []string
	for _, c := range clients {
		for _, a := range []string{c.IDTokenSignedResponseAlg, c.UserinfoSignedResponseAlg} {
			if a != "" && !slices.Contains(algs, a) {
				algs = append(algs, a)
			}
		}
	}
	return algs
}
