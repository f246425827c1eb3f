package account

import (
	"context"
	"sync"
)

// Request-scoped values, so that dozens of signatures need not grow: the
// HTTP layers put the address and browser of the person behind a request
// into its context once (WithRequest), and account adds what it learns
// while serving it: the app of the sign-in record in play (Flow), and
// the person whose session the request carries (ResumeSession). The
// audit log takes all of them from there when an event does not say.
// Only the audit log reads them; no rule depends on them.

type requestKey struct{}

type actorKey struct{}

// request holds a request's values. The HTTP layer creates it; account
// fills clientID and userID in as it learns them, hence the lock.
type request struct {
	ip, userAgent string

	mu               sync.Mutex
	clientID, userID string
}

// WithRequest returns ctx carrying the client address and user agent of
// the request it serves. The portal calls it once per request.
func WithRequest(ctx context.Context, ip, userAgent string) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{ip: ip, userAgent: userAgent})
}

// RequestFrom returns the client address and user agent WithRequest put
// into ctx ("" when there are none).
func RequestFrom(ctx context.Context) (ip, userAgent string) {
	if r := requestOf(ctx); r != nil {
		return r.ip, r.userAgent
	}
	return "", ""
}

// WithActor returns ctx naming who acts in it, for callers without a
// signed-in session: the command line (Actor{Kind: ActorCLI}), Keyport's
// own schedules (SystemActor). It wins over the session's user.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func requestOf(ctx context.Context) *request {
	r, _ := ctx.Value(requestKey{}).(*request)
	return r
}

// noteClient records that the request works on a sign-in for clientID.
func noteClient(ctx context.Context, clientID string) {
	if r := requestOf(ctx); r != nil && clientID != "" {
		r.mu.Lock()
		r.clientID = clientID
		r.mu.Unlock()
	}
}

// noteUser records that the request carries userID's session.
func noteUser(ctx context.Context, userID string) {
	if r := requestOf(ctx); r != nil {
		r.mu.Lock()
		r.userID = userID
		r.mu.Unlock()
	}
}

// requestClient is the app of the sign-in the request works on, if any.
func requestClient(ctx context.Context) string {
	if r := requestOf(ctx); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.clientID
	}
	return ""
}

// actorIn is who acts in ctx: the actor WithActor named, else the user
// whose session the request carries, else fallback (the command line,
// for the methods it calls).
func actorIn(ctx context.Context, fallback Actor) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	if r := requestOf(ctx); r != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.userID != "" {
			return Actor{Kind: ActorUser, UserID: r.userID}
		}
	}
	return fallback
}

// userActor is u acting on their own account.
func userActor(id string) Actor { return Actor{Kind: ActorUser, UserID: id} }

// cliActor is the fallback of the methods the command line calls.
var cliActor = Actor{Kind: ActorCLI}

// withClient is ctx for work on a sign-in for clientID that the request
// context does not know of (a refresh, forward auth for an app).
func withClient(ctx context.Context, clientID string) context.Context {
	n := &request{clientID: clientID}
	if r := requestOf(ctx); r != nil {
		r.mu.Lock()
		n.ip, n.userAgent, n.userID = r.ip, r.userAgent, r.userID
		r.mu.Unlock()
	}
	return context.WithValue(ctx, requestKey{}, n)
}
