// Package storagetest is the conformance suite every storage.Store backend
// must pass. A backend's test calls Run with a constructor for fresh stores:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
//			s := openTestStore(t, now) // closed in t.Cleanup
//			return s
//		})
//	}
//
// Every subtest gets its own store and its own clock; expiry is tested by
// moving that clock, so the store must read the time only through now.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// base is where every subtest's clock starts.
var base = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

type test struct {
	name string
	fn   func(t *testing.T, s storage.Store, clock *testclock.Clock)
}

// Run runs the conformance suite. newStore must return an empty store that
// reads the time only through now, and close it in t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T, now func() time.Time) storage.Store) {
	groups := []struct {
		name  string
		tests []test
	}{
		{"Users", userTests},
		{"Clients", clientTests},
		{"ClientRecords", clientRecordTests},
		{"AuthRequests", authRequestTests},
		{"Tokens", tokenTests},
		{"Sessions", sessionTests},
		{"Grants", grantTests},
		{"GrantLists", grantListTests},
		{"SigningKeys", keyTests},
		{"Settings", settingTests},
		{"OneTimeTokens", oneTimeTokenTests},
		{"LoginAttempts", loginAttemptTests},
		{"SignIns", signInTests},
		{"Credentials", credentialTests},
		{"Identities", identityTests},
		{"Directories", directoryTests},
		{"Throttles", throttleTests},
		{"Audit", auditTests},
		{"SignInAudit", signInAuditTests},
		{"UserSearch", userSearchTests},
		{"Groups", groupTests},
		{"Sweep", sweepTests},
		{"Backup", backupTests},
		{"ImportUsers", importUserTests},
		{"Outbox", outboxTests},
		{"Webhooks", webhookTests},
		{"DeviceAuthorizations", deviceTests},
		{"TokenExchange", tokenExchangeTests},
		{"DPoP", dpopTests},
		{"Registration", registrationTests},
		{"CustomClaims", customClaimTests},
		{"Resources", resourceTests},
		{"Pairwise", pairwiseTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					clock := testclock.At(base) // each subtest moves its own
					s := newStore(t, clock.Now)
					tc.fn(t, s, clock)
				})
			}
		})
	}
}

// Assertions.

func ok(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func isErr(t *testing.T, err, want error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(format, args...), err, want)
	}
}

func equal[T any](t *testing.T, got, want T, format string, args ...any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", fmt.Sprintf(format, args...), got, want)
	}
}

var errBoom = errors.New("boom")

// concurrently runs fn(i) for i in [0, n) at the same time and returns the
// errors by i.
func concurrently(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			start.Wait()
			errs[i] = fn(i)
		})
	}
	start.Done()
	wg.Wait()
	return errs
}

// Fixtures. Times are UTC without monotonic readings so records survive any
// reasonable encoding unchanged.

func newUser(id, username, email string) storage.User {
	return storage.User{
		ID: id, Username: username, Email: email, EmailVerified: email != "",
		Name: "Name of " + username, Groups: []string{"staff"},
		CreatedAt: base, UpdatedAt: base,
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
	}
}

func newClient(id string) storage.Client {
	return storage.Client{
		ID: id, Name: "Client " + id, SecretHash: "ab12",
		RedirectURIs: []string{"https://" + id + ".example/cb"},
		GrantTypes:   []string{"authorization_code", "refresh_token"},
		CreatedAt:    base,
	}
}

// createAuthRequest stores a with no pending limits.
func createAuthRequest(ctx context.Context, s storage.Store, a storage.AuthRequest) error {
	_, err := s.CreateAuthRequest(ctx, a, storage.PendingLimits{})
	return err
}

func newAuthRequest(id string, now time.Time, ttl time.Duration) storage.AuthRequest {
	maxAge := uint(300)
	return storage.AuthRequest{
		ID: id, ClientID: "app", RedirectURI: "https://app.example/cb", State: "st", Nonce: "no",
		Scopes: []string{"openid", "profile"}, ResponseType: "code",
		CodeChallenge: "challenge", CodeChallengeMethod: "S256", MaxAge: &maxAge,
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

// newRefresh builds the live link id (hash "h-"+id) of family fid: idle
// deadline after idle, absolute deadline after 30 days.
func newRefresh(id, fid, userID, clientID string, now time.Time, idle time.Duration) storage.RefreshToken {
	return storage.RefreshToken{
		Hash: "h-" + id, ID: id, FamilyID: fid, ClientID: clientID, UserID: userID,
		Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd"},
		AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour), IdleExpiresAt: now.Add(idle),
	}
}

func newAccess(id, fid, userID, clientID string, now time.Time, ttl time.Duration) storage.AccessToken {
	subject := userID
	if subject == "" {
		subject = clientID
	}
	return storage.AccessToken{
		ID: id, ClientID: clientID, UserID: userID, Subject: subject, FamilyID: fid,
		Scopes: []string{"openid"}, Audience: []string{clientID},
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

func newSession(id, userID string, now time.Time, ttl time.Duration) storage.Session {
	return storage.Session{
		ID: id, UserID: userID, AuthTime: now, AMR: []string{"pwd"}, IP: "192.0.2.1", UserAgent: "test",
		CreatedAt: now, ExpiresAt: now.Add(ttl),
	}
}

// idsOf lists the IDs of records in order (never nil, so an empty list
// compares equal to []string{}).
func idsOf[T any](records []T, id func(T) string) []string {
	out := []string{}
	for _, r := range records {
		out = append(out, id(r))
	}
	return out
}
