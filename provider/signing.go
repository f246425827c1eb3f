package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/storage"
)

// Each app's tokens are signed with the key of the algorithm it asked for
// (storage.Client.IDTokenSignedResponseAlg), the [keys] algorithm's when
// it asked for none. zitadel asks for the key with op.Storage.SigningKey,
// whose only argument is the request's context, after it loaded the
// request's client through GetClientByClientID or ClientCredentials. So
// the middleware puts a signingNote in the context of every token
// request, those two note the client's algorithm in it, and SigningKey
// reads it. The note belongs to one request, which has one client, so
// concurrent requests of apps with different algorithms never see each
// other's. JWT access tokens go through SigningKey too, and so follow the
// app's algorithm as its ID tokens do: their audience is the app.
type signingNote struct {
	mu  sync.Mutex
	alg string
	// userinfoClient is, at userinfo, the app the access token was
	// issued to (signUserinfo).
	userinfoClient string
}

type signingNoteKey struct{}

func withSigningNote(ctx context.Context) context.Context {
	return context.WithValue(ctx, signingNoteKey{}, &signingNote{})
}

func signingNoteFrom(ctx context.Context) *signingNote {
	n, _ := ctx.Value(signingNoteKey{}).(*signingNote)
	return n
}

// set notes the algorithm of c, the client of the request.
func (n *signingNote) set(c storage.Client) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.alg = c.IDTokenSignedResponseAlg
}

// algorithm is the noted algorithm, "" for the default.
func (n *signingNote) algorithm() string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.alg
}

// setUserinfoClient notes, at userinfo, the app of the access token.
func (n *signingNote) setUserinfoClient(id string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.userinfoClient = id
}

func (n *signingNote) userinfoClientID() string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.userinfoClient
}

// signUserinfo turns a successful userinfo answer into a JWT for an app
// that registered userinfo_signed_response_alg (OpenID Connect Core 1.0
// §5.3.2): the claims with iss and aud (the app) added, signed with the
// key of that algorithm, as application/jwt. Other answers stay as they
// are. A failure to sign becomes a server error rather than unsigned
// claims the app would refuse.
func (p *Provider) signUserinfo(ctx context.Context, rec *recorder) {
	if rec.status != 0 && rec.status != http.StatusOK {
		return
	}
	id := signingNoteFrom(ctx).userinfoClientID()
	if id == "" {
		return
	}
	c, err := p.storage.getClient(ctx, id)
	if err != nil || c.UserinfoSignedResponseAlg == "" {
		return // a deleted app's token was refused already
	}
	jwt, err := p.signedUserinfo(ctx, c, rec.body.Bytes())
	if err != nil {
		p.log.ErrorContext(ctx, "sign userinfo", "client_id", c.ID, "err", err)
		rec.status = http.StatusInternalServerError
		return
	}
	rec.body.Reset()
	rec.body.WriteString(jwt)
	rec.header.Set("Content-Type", "application/jwt")
	rec.header.Del("Content-Length")
}

func (p *Provider) signedUserinfo(ctx context.Context, c storage.Client, body []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return "", fmt.Errorf("decode the claims: %w", err)
	}
	claims["iss"] = p.opts.Issuer
	claims["aud"] = c.ID
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode the claims: %w", err)
	}
	key, err := p.opts.Keys.signer(ctx, c.UserinfoSignedResponseAlg)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.key, KeyID: key.id}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return jws.CompactSerialize()
}
