package provider

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/storage"
)

// authenticateCodeClient authenticates the client of an authorization_code
// grant before zitadel looks at the code. zitadel redeems the code first and
// checks the client after, so an unknown client got invalid_grant instead of
// invalid_client (RFC 6749 §5.2), and anyone who saw a code could spend it,
// and then make the real exchange look like a replay, without any
// credentials. The credentials are read as zitadel reads them: HTTP Basic
// (form-urlencoded, RFC 6749 §2.3.1), else client_id and client_secret from
// the form, the query string included (zitadel reads r.Form); a public
// client is identified by client_id alone, its codes are bound to it by
// PKCE.
func (p *Provider) authenticateCodeClient(r *http.Request) (codeClient, *oidc.Error) {
	if presentsAssertion(r.Form) {
		// The middleware checks a client assertion and replaces it with
		// the client it authenticated (clientassertion.go); one still
		// here was never checked.
		return codeClient{}, oidc.ErrInvalidClient().WithDescription("the client assertion was not checked")
	}
	id, secret, credErr := clientCredentials(r)
	if credErr != nil {
		return codeClient{}, credErr
	}
	public, err := p.storage.authenticateTokenClient(r.Context(), id, secret)
	if err != nil {
		return codeClient{}, err
	}
	return codeClient{id: id, public: public, verifier: r.Form.Get("code_verifier")}, nil
}

// clientCredentials reads a client's ID and secret as zitadel reads them:
// HTTP Basic (form-urlencoded, RFC 6749 §2.3.1), else client_id and
// client_secret from the form, the query string included.
func clientCredentials(r *http.Request) (id, secret string, _ *oidc.Error) {
	id, secret, basic := r.BasicAuth()
	if !basic {
		return r.Form.Get("client_id"), r.Form.Get("client_secret"), nil
	}
	id, err1 := url.QueryUnescape(id)
	secret, err2 := url.QueryUnescape(secret)
	if err1 != nil || err2 != nil {
		return "", "", oidc.ErrInvalidClient().WithDescription("invalid basic auth header")
	}
	return id, secret, nil
}

// answerClientRefusal answers a request whose client authentication the
// throttle refused (429) or that failed (zitadel's error, corrected by
// finish), and reports whether it did; with neither it answers nothing.
func (p *Provider) answerClientRefusal(w http.ResponseWriter, r *http.Request, path string, err error) bool {
	if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
		writeThrottled(w, refused)
		return true
	}
	if err == nil {
		return false
	}
	rec := newRecorder()
	op.RequestError(rec, r, err, nil)
	p.finish(w, r, path, rec)
	return true
}

// authenticateTokenClient checks a client at the token endpoint: a public
// one by its ID, a confidential one by its secret too. It tells which of
// the two the client is.
func (s *opStorage) authenticateTokenClient(ctx context.Context, id, secret string) (public bool, _ *oidc.Error) {
	c, err := s.getClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return false, s.internal(ctx, "load client", err)
	}
	if err == nil && c.Public {
		return true, nil
	}
	if _, err := s.authenticateClient(ctx, id, secret); err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			return false, oe
		}
		return false, s.internal(ctx, "authenticate client", err)
	}
	return false, nil
}

// codeClient is the client of a code exchange, as authenticateCodeClient
// found it, with the PKCE verifier it presented.
type codeClient struct {
	id       string
	public   bool
	verifier string
}

// provesReplay tells whether the client presenting a redeemed code again
// proves it is the one the code was issued to, so that the replay may
// revoke the code's tokens: a confidential client did by its secret; a
// public client is known by its ID alone, which anyone may send, so it
// proves itself by the code's PKCE verifier (RFC 7636), which only it
// holds. Otherwise anyone who saw a used code could sign its user out.
func (c codeClient) provesReplay(redeemed storage.AuthRequest) bool {
	if !c.public {
		return true
	}
	if redeemed.CodeChallenge == "" || redeemed.CodeChallengeMethod != string(oidc.CodeChallengeMethodS256) || c.verifier == "" {
		return false
	}
	got := oidc.NewSHACodeChallenge(c.verifier)
	return subtle.ConstantTimeCompare([]byte(got), []byte(redeemed.CodeChallenge)) == 1
}

// codeClientKey carries the client authenticateCodeClient authenticated to
// AuthRequestByCode, which redeems only that client's codes.
type codeClientKey struct{}

func withCodeClient(ctx context.Context, c codeClient) context.Context {
	return context.WithValue(ctx, codeClientKey{}, c)
}

func codeClientFrom(ctx context.Context) (codeClient, bool) {
	c, ok := ctx.Value(codeClientKey{}).(codeClient)
	return c, ok
}

// validS256Challenge tells whether c can be an S256 code_challenge: the
// unpadded base64url of a SHA-256 (RFC 7636 §4.2), 43 characters.
func validS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil
}

// validCodeVerifier tells whether v has the syntax of a PKCE code_verifier
// (RFC 7636 §4.1): 43 to 128 characters from the URI's unreserved ones.
// zitadel compares any string with the challenge, so a client that made
// its verifier short, and its challenge with it, would be let through
// with a verifier that can be guessed from the challenge seen in the
// authorization request (§7.1).
func validCodeVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}
