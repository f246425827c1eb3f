package provider

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/throttle"
)

// Client secrets are throttled like passwords: per client and client
// address, and per address (throttle.Limiter.Client), so guessing a secret
// costs the guesser, while nobody can lock an app out from elsewhere. A
// throttled request is refused before its secret is checked. zitadel calls
// our storage to check the secret and turns any refusal into its own
// invalid_client answer, so the refusal is noted in the request's context
// and the middleware turns the response into 429 with Retry-After.

// clientAuthNote carries a throttle refusal from the storage adapter back
// to the middleware that wrote the request. It also remembers a client that
// failed already: refresh-token introspection checks the secret before
// zitadel checks it again, and one request is one guess.
type clientAuthNote struct {
	mu       sync.Mutex
	refused  *throttle.Refused
	failedID string
	failed   bool
}

type clientAuthKey struct{}

func withClientAuthNote(ctx context.Context) context.Context {
	return context.WithValue(ctx, clientAuthKey{}, &clientAuthNote{})
}

func clientAuthNoteFrom(ctx context.Context) *clientAuthNote {
	n, _ := ctx.Value(clientAuthKey{}).(*clientAuthNote)
	return n
}

func (n *clientAuthNote) set(r *throttle.Refused) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refused = r
}

func (n *clientAuthNote) get() *throttle.Refused {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refused
}

// decided tells whether this request was refused or failed for client id
// already, so a second check of it must not count again.
func (n *clientAuthNote) decided(id string) bool {
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refused != nil || (n.failed && n.failedID == id)
}

func (n *clientAuthNote) fail(id string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.failed, n.failedID = true, id
}

var errInvalidClient = oidc.ErrInvalidClient().WithDescription("invalid client_id / client_secret")

// checkClientSecret reserves the attempt, then checks secret against c
// (found says whether the client exists) and counts a failure. Requests
// that present the same secret for the same client from the same address
// while a check of it runs share that check (throttle.Guesses): one guess,
// counted once, so a busy backend sending its right secret on many
// parallel requests is not refused by reservations of its own requests.
func (s *opStorage) checkClientSecret(ctx context.Context, id, secret string, c clientRecord) error {
	ip := clientip.FromContext(ctx)
	note := clientAuthNoteFrom(ctx)
	if note.decided(id) {
		return errInvalidClient
	}
	// The stored hashes are parts too: once the secret is rotated, what
	// was kept for the old one no longer applies.
	parts := []string{id, ip, secret, c.secretHash, c.previousHash, strconv.FormatInt(c.previousUntil.UnixNano(), 10), strconv.FormatBool(c.assertionOnly)}
	now, keep := s.now(), rightSecretKept
	if c.previousHash != "" && now.Before(c.previousUntil) {
		// Never past the old secret's grace. A grace that is over (its
		// hash stays in the record until the next rotation) holds
		// nothing back: the old secret no longer matches, so what is
		// kept is the current one.
		keep = min(keep, c.previousUntil.Sub(now))
	}
	out := s.secrets.CheckRecent(parts, now, keep, clientCheck.passed, func() clientCheck {
		return s.checkClientSecretOnce(ctx, id, ip, secret, c)
	})
	switch {
	case out.refused != nil:
		note.set(out.refused)
		return errInvalidClient
	case out.failed:
		note.fail(id)
		return errInvalidClient
	}
	return out.err
}

// rightSecretKept is how long a right client secret, presented again by
// the same client from the same address, is taken without another check
// and without reading the throttle's records (throttle.Guesses.CheckRecent).
// Short, so that an address locked out meanwhile by someone else's wrong
// guesses (behind one NAT) is refused again soon even with the right
// secret; a guess never gains from it, since only the right secret is
// kept.
const rightSecretKept = time.Second

// clientCheck is the outcome of one check of a client secret.
type clientCheck struct {
	refused *throttle.Refused // throttled: not checked
	failed  bool              // checked and wrong
	err     error             // anything else that went wrong
}

// passed tells a right secret, accepted.
func (c clientCheck) passed() bool { return c.refused == nil && !c.failed && c.err == nil }

// LogClientRefused is the message of the INFO line written for each
// refused client authentication; like account.LogRefused, the log's handler
// limits it.
const LogClientRefused = "client authentication refused: throttled"

func (s *opStorage) checkClientSecretOnce(ctx context.Context, id, ip, secret string, c clientRecord) clientCheck {
	return s.throttledClientCheck(ctx, id, ip, func() (string, error) {
		// Spend the same hash on a missing client as on a real check, so a miss
		// is not faster. The previous secret of a rotation authenticates the
		// client until its grace ends; both are always compared, so the time
		// taken does not tell which one matched.
		current := account.SecretMatches(secret, c.secretHash)
		previous := account.SecretMatches(secret, c.previousHash) && s.now().Before(c.previousUntil)
		ok := current || previous
		switch {
		case !c.found:
			return "unknown client", nil
		case c.public:
			return "public client sent a secret", nil
		case c.assertionOnly:
			// Registered for private_key_jwt or client_secret_jwt: the
			// method is the app's, a secret does not stand in for it.
			return "app authenticates with a signed assertion, sent a secret", nil
		case !ok:
			return "wrong secret", nil
		}
		return "", nil
	})
}

// throttledClientCheck reserves an attempt of client id from ip, runs
// check (the reason the client failed, "" when it passed, or an error of
// the server's, which counts nothing) and counts its outcome: client
// secrets and client assertions are one budget, so a guesser gains
// nothing by switching.
func (s *opStorage) throttledClientCheck(ctx context.Context, id, ip string, check func() (string, error)) clientCheck {
	var res *throttle.Reservation // nil: no throttle configured
	if s.throttle != nil {
		var err error
		if res, err = s.throttle.Client(ctx, id, ip); err != nil {
			var refused *throttle.Refused
			if errors.As(err, &refused) {
				// One INFO line per refusal, its message constant (see
				// account's refusals).
				if s.observer != nil {
					s.observer.Throttled("client_secret")
				}
				s.log.InfoContext(ctx, LogClientRefused, "client_ip", ip, "client_net", throttle.Address(ip), "client_id", account.LogName(id), "limit", refused.Scope, "retry_after", refused.RetryAfter)
				return clientCheck{refused: refused}
			}
			return clientCheck{err: s.internal(ctx, "reserve client authentication", err)}
		}
	}
	reason, err := check()
	if err != nil {
		res.Cancel()
		return clientCheck{err: s.internal(ctx, "authenticate client", err)}
	}
	if reason == "" {
		if err := res.Succeed(ctx); err != nil {
			s.log.ErrorContext(ctx, "forgive failed client authentications", "err", err)
		}
		return clientCheck{}
	}
	trips, err := res.Fail(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "count failed client authentication", "err", err)
	}
	// One stable shape, the address first (see docs/fail2ban).
	s.log.WarnContext(ctx, "client authentication failed", "client_ip", ip, "client_net", throttle.Address(ip), "client_id", account.LogName(id), "reason", reason)
	for _, t := range trips {
		s.log.WarnContext(ctx, "client authentication throttled", "client_ip", ip, "client_net", throttle.Address(ip), "client_id", account.LogName(id), "limit", t.Scope, "retry_after", t.For)
	}
	return clientCheck{failed: true}
}

// clientRecord is what checkClientSecret needs of the client.
type clientRecord struct {
	found, public bool
	// assertionOnly: the app is registered for a JWT method and may not
	// send its secret (account.UsesAssertion).
	assertionOnly bool
	secretHash    string
	// previousHash is the secret a rotation replaced, valid until
	// previousUntil.
	previousHash  string
	previousUntil time.Time
}

// writeThrottled answers a client authentication refused by the throttle.
// RFC 6749 has no error code for it; temporarily_unavailable (registered
// for the authorization endpoint, §4.1.2.1) says what is true: try again
// later. invalid_client would claim the secret was checked and wrong, and
// slow_down belongs to the device flow's polling (RFC 8628).
func writeThrottled(w http.ResponseWriter, r *throttle.Refused) {
	secs := throttle.RetryAfterSeconds(r.RetryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Cache-Control", "no-store")
	writeJSONError(w, http.StatusTooManyRequests, "temporarily_unavailable",
		"too many failed client authentications from this address; try again in "+strconv.Itoa(secs)+" seconds")
}
