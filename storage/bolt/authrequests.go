package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// CreateAuthRequest stores a new request. Before it does, it evicts
// requests until the new one fits within limits (see storage.PendingLimits
// and pending.go): of a.Origin for PerOrigin, of the largest group for
// Total. The number of requests is the bucket's sequence, kept in the same
// transactions as the requests.
func (d *DB) CreateAuthRequest(ctx context.Context, a storage.AuthRequest, limits storage.PendingLimits) (int, error) {
	if a.ID == "" {
		return 0, fmt.Errorf("create auth request: empty ID")
	}
	raw, err := storage.EncodeAuthRequest(a)
	if err != nil {
		return 0, err
	}
	var evicted int
	err = d.flowBatch(func(tx *bbolt.Tx) error {
		evicted = 0
		b := tx.Bucket(bAuthRequests)
		if has(b, a.ID) {
			return conflict("create auth request", a.ID)
		}
		// A refusal (ErrLimitReached) comes before any eviction, unless
		// a limit was lowered since the requests were stored.
		if a.Origin != "" && limits.PerOrigin > 0 {
			n, err := evictForOrigin(tx, a.Origin, limits.PerOrigin)
			evicted += n
			if err != nil {
				return err
			}
		}
		if limits.Total > 0 {
			n, err := evictForTotal(tx, limits.Total)
			evicted += n
			if err != nil {
				return err
			}
		}
		if err := b.Put([]byte(a.ID), raw); err != nil {
			return err
		}
		if err := b.SetSequence(b.Sequence() + 1); err != nil {
			return err
		}
		if err := indexAuthRequest(tx, a); err != nil {
			return err
		}
		return putExpiry(tx, expAuthRequest, a.ExpiresAt, a.ID)
	})
	if err != nil {
		return 0, err
	}
	return evicted, nil
}

// putAuthRequest stores a request (storage.EncodeAuthRequest).
func putAuthRequest(b *bbolt.Bucket, a storage.AuthRequest) error {
	raw, err := storage.EncodeAuthRequest(a)
	if err != nil {
		return err
	}
	return b.Put([]byte(a.ID), raw)
}

func (d *DB) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	var a storage.AuthRequest
	err := d.flow.View(func(tx *bbolt.Tx) error {
		var err error
		a, err = d.liveAuthRequest(tx, id, "get auth request")
		return err
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return a, nil
}

// UpdateAuthRequest applies fn to the stored request in one transaction.
// Because the write is batched with concurrent ones, fn may be called more
// than once; it must not have side effects.
func (d *DB) UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		old, err := d.liveAuthRequest(tx, id, "update auth request")
		if err != nil {
			return err
		}
		arg, _ := d.liveAuthRequest(tx, id, "update auth request") // a copy fn may scribble on
		na, err := fn(arg)
		if err != nil {
			return &callbackError{fmt.Errorf("update auth request %q: %w", id, err)}
		}
		if na.ID != id {
			return fmt.Errorf("update auth request %q: the ID cannot change (got %q)", id, na.ID)
		}
		if err := putAuthRequest(tx.Bucket(bAuthRequests), na); err != nil {
			return err
		}
		if err := moveExpiry(tx, expAuthRequest, old.ExpiresAt, na.ExpiresAt, id); err != nil {
			return err
		}
		if err := reindexAuthRequest(tx, old, na); err != nil {
			return err
		}
		out = na
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return out, nil
}

// DeleteAuthRequest removes the request and any code that points at it.
// It runs after every code exchange, so it shares commits with other writes.
func (d *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	// A request that is gone already (redeemed, expired and swept) costs
	// a read, not a commit: a code exchange always ends by deleting the
	// request its redemption deleted.
	var present bool
	if err := d.flow.View(func(tx *bbolt.Tx) error {
		present = has(tx.Bucket(bAuthRequests), id)
		return nil
	}); err != nil {
		return fmt.Errorf("delete auth request %q: %w", id, err)
	}
	if !present {
		return notFound("delete auth request", id)
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		found, err := deleteAuthRequestTx(tx, id)
		if err == nil && !found {
			err = notFound("delete auth request", id)
		}
		return err
	})
}

// IssueCode gives the live request authRequestID its one code: marked
// issued, its expiry brought forward to expires, codeHash linked to it,
// all in one transaction.
func (d *DB) IssueCode(ctx context.Context, authRequestID, codeHash string, expires time.Time) error {
	if authRequestID == "" || codeHash == "" {
		return fmt.Errorf("issue code: empty auth request ID or code hash")
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		// Every refusal comes before the first write: batch() commits the
		// writes of a transaction that ends in an outcome such as these.
		old, err := d.liveAuthRequest(tx, authRequestID, "issue code for auth request")
		if err != nil {
			return err
		}
		if old.CodeIssued {
			return conflict("issue code: auth request has its code already", authRequestID)
		}
		codes, byReq := tx.Bucket(bCodes), tx.Bucket(bCodesByRequest)
		if codes.Get([]byte(codeHash)) != nil {
			return fmt.Errorf("issue code for auth request %q: code: %w", authRequestID, storage.ErrConflict)
		}
		a := old
		a.CodeIssued = true
		if expires.Before(a.ExpiresAt) {
			a.ExpiresAt = expires
		}
		if err := putAuthRequest(tx.Bucket(bAuthRequests), a); err != nil {
			return err
		}
		if err := moveExpiry(tx, expAuthRequest, old.ExpiresAt, a.ExpiresAt, a.ID); err != nil {
			return err
		}
		if err := reindexAuthRequest(tx, old, a); err != nil {
			return err
		}
		if err := codes.Put([]byte(codeHash), []byte(a.ID)); err != nil {
			return err
		}
		return byReq.Put([]byte(a.ID), []byte(codeHash))
	})
}

// RedeemCode returns the request codeHash belongs to and unlinks the code in
// the same transaction, remembering the redemption with the IDs of what
// the exchange issues. Only the first of concurrent redemptions succeeds.
func (d *DB) RedeemCode(ctx context.Context, codeHash, clientID string, issue storage.IssuedTokens) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		out = storage.AuthRequest{}
		raw := tx.Bucket(bCodes).Get([]byte(codeHash))
		if raw == nil {
			rc, err := d.redeemed(tx, codeHash, clientID)
			if err != nil {
				return err
			}
			out = storage.AuthRequest{ID: rc.AuthRequestID, UserID: rc.UserID, ClientID: rc.ClientID,
				CodeChallenge: rc.CodeChallenge, CodeChallengeMethod: rc.CodeChallengeMethod}
			return fmt.Errorf("redeem code of auth request %q: %w", rc.AuthRequestID, storage.ErrTokenReused)
		}
		id := string(raw)
		a, err := d.liveAuthRequest(tx, id, "redeem code for auth request")
		if errors.Is(err, storage.ErrNotFound) {
			// A code whose request is gone or expired is useless: it goes.
			// Deleting it before returning ErrNotFound is the one write
			// batch() lets commit together with an outcome.
			if derr := unlinkCode(tx, codeHash, id); derr != nil {
				return derr
			}
			return err
		}
		if err != nil {
			return err
		}
		if a.ClientID != clientID {
			// Another client's code: it does not exist for this caller,
			// and stays usable for its own client.
			return fmt.Errorf("redeem code: %w", storage.ErrNotFound)
		}
		if err := unlinkCode(tx, codeHash, id); err != nil {
			return err
		}
		// Remember the redemption for a while, so a replayed code can be told
		// apart from a made-up one and its tokens revoked (RFC 6749 §4.1.2),
		// and with it the PKCE challenge a public client's replay must meet.
		rc := redeemedCode{AuthRequestID: a.ID, UserID: a.UserID, ClientID: a.ClientID,
			CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod, Issued: issue, ExpiresAt: d.now().Add(redeemedCodeMemory)}
		if err := putJSON(tx.Bucket(bRedeemedCodes), codeHash, rc); err != nil {
			return err
		}
		if err := putExpiry(tx, expRedeemedCode, rc.ExpiresAt, codeHash); err != nil {
			return err
		}
		// The request has done its job: the redemption keeps what a
		// replay needs. Deleting it here spares the exchange a commit of
		// its own when zitadel deletes it after the tokens.
		if _, err := deleteAuthRequestTx(tx, id); err != nil {
			return err
		}
		out = a
		return nil
	})
	if errors.Is(err, storage.ErrTokenReused) {
		return out, err
	}
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return out, nil
}

// MarkCodeReplayed marks a redeemed code replayed and returns what it
// issued so far.
func (d *DB) MarkCodeReplayed(ctx context.Context, codeHash, clientID string) (storage.IssuedTokens, error) {
	var issued storage.IssuedTokens
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		issued = storage.IssuedTokens{}
		rc, err := d.redeemed(tx, codeHash, clientID)
		if err != nil {
			return err
		}
		// An exchange of this code still under way learns of the mark
		// when it has stored its tokens (CreateCodeTokens).
		rc.Replayed = true
		issued = rc.Issued
		return putJSON(tx.Bucket(bRedeemedCodes), codeHash, rc)
	})
	if err != nil {
		return storage.IssuedTokens{}, err
	}
	return issued, nil
}

// redeemed reads the remembered redemption of codeHash by clientID.
func (d *DB) redeemed(tx *bbolt.Tx, codeHash, clientID string) (redeemedCode, error) {
	var rc redeemedCode
	ok, err := getJSON(tx.Bucket(bRedeemedCodes), codeHash, &rc)
	if err != nil {
		return redeemedCode{}, err
	}
	if !ok || expired(rc.ExpiresAt, d.now()) || rc.ClientID != clientID {
		return redeemedCode{}, fmt.Errorf("redeemed code: %w", storage.ErrNotFound)
	}
	return rc, nil
}

// unlinkCode deletes the code codeHash of request id and its reverse entry.
func unlinkCode(tx *bbolt.Tx, codeHash, id string) error {
	if err := tx.Bucket(bCodes).Delete([]byte(codeHash)); err != nil {
		return err
	}
	byReq := tx.Bucket(bCodesByRequest)
	if string(byReq.Get([]byte(id))) == codeHash {
		return byReq.Delete([]byte(id))
	}
	return nil
}

// CreateCodeTokens stores the tokens of a code's exchange, then looks at
// the code's redemption: if it was marked replayed meanwhile, the tokens go
// again. The two files (tokens in the main one, redemptions in the flow
// file) cannot share a transaction; the order makes up for it (see
// storage.AuthRequests).
func (d *DB) CreateCodeTokens(ctx context.Context, codeHash string, access storage.AccessToken, refresh *storage.RefreshToken, sessionID string) error {
	if err := d.createTokens(access, refresh, sessionID); err != nil {
		return err
	}
	var rc redeemedCode
	err := d.flow.View(func(tx *bbolt.Tx) error {
		_, err := getJSON(tx.Bucket(bRedeemedCodes), codeHash, &rc)
		return err
	})
	if err == nil && !rc.Replayed {
		return nil // a code no longer remembered: its tokens stand
	}
	if derr := d.deleteCodeTokens(access, refresh); derr != nil {
		return fmt.Errorf("delete the tokens of a replayed code: %w", derr)
	}
	if err != nil {
		return fmt.Errorf("read the redemption of a code: %w", err)
	}
	return fmt.Errorf("create tokens of the code of auth request %q: %w", rc.AuthRequestID, storage.ErrTokenReused)
}

// deleteCodeTokens deletes what CreateCodeTokens stored.
func (d *DB) deleteCodeTokens(access storage.AccessToken, refresh *storage.RefreshToken) error {
	return d.batch(func(tx *bbolt.Tx) error {
		if refresh != nil {
			_, err := revokeFamilyTx(tx, refresh.FamilyID)
			return err
		}
		_, err := deleteAccessTx(tx, access.ID)
		return err
	})
}

// redeemedCodeMemory is how long a redeemed code is remembered.
const redeemedCodeMemory = 10 * time.Minute

type redeemedCode struct {
	AuthRequestID       string               `json:"auth_request_id"`
	UserID              string               `json:"user_id"`
	ClientID            string               `json:"client_id"`
	CodeChallenge       string               `json:"code_challenge,omitempty"`
	CodeChallengeMethod string               `json:"code_challenge_method,omitempty"`
	Issued              storage.IssuedTokens `json:"issued,omitzero"`
	// Replayed: the code was presented again after its redemption.
	Replayed  bool      `json:"replayed,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// liveAuthRequest reads an unexpired request; op names the caller in errors.
func (d *DB) liveAuthRequest(tx *bbolt.Tx, id, op string) (storage.AuthRequest, error) {
	var a storage.AuthRequest
	ok, err := getJSON(tx.Bucket(bAuthRequests), id, &a)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	if !ok || expired(a.ExpiresAt, d.now()) {
		return storage.AuthRequest{}, notFound(op, id)
	}
	return a, nil
}

// deleteAuthRequestTx removes a request, its code, its expiry and pending
// limit entries, and counts it out.
func deleteAuthRequestTx(tx *bbolt.Tx, id string) (bool, error) {
	b := tx.Bucket(bAuthRequests)
	var a storage.AuthRequest
	ok, err := getJSON(b, id, &a)
	if err != nil || !ok {
		return false, err
	}
	if err := unindexAuthRequest(tx, a); err != nil {
		return false, err
	}
	if n := b.Sequence(); n > 0 {
		if err := b.SetSequence(n - 1); err != nil {
			return false, err
		}
	}
	byReq := tx.Bucket(bCodesByRequest)
	if code := byReq.Get([]byte(id)); code != nil {
		if err := tx.Bucket(bCodes).Delete(code); err != nil {
			return false, err
		}
		if err := byReq.Delete([]byte(id)); err != nil {
			return false, err
		}
	}
	if err := deleteExpiry(tx, expAuthRequest, a.ExpiresAt, id); err != nil {
		return false, err
	}
	return true, b.Delete([]byte(id))
}
