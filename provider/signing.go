package provider

import (
	"context"
	"sync"

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
