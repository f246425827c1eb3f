package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

var _ storage.Loader = (*DB)(nil)

// rebuiltBuckets are the indexes Load builds from the records rather than
// copies; every other bucket of allDataBuckets is dumped (dump.go). A new
// bucket goes in one or the other (TestEveryBucketIsCopiedOrRebuilt).
var rebuiltBuckets = [][]byte{
	bUsersByUsername, bUsersByEmail, bUsersByIdentity, bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins,
	bGroupsByName, bRefreshByID, bFamilyMembers, bUserTokens, bUserSessions, bExpiry, bCredentialsByHash,
	bCredentialsByWebAuthn, bAuditByActor, bAuditByTarget, bClientRecords, bOutboxDue, bOutboxByState,
	bWebhooksByOwner, bOneTimeByUser,
}

// Load stores a dump (storage.Dumper) in this empty database, in one
// write transaction: all of it or, on any error, nothing. Indexes are
// built from the records, as the write methods would have built them:
// login names and identities, user search, group members and admins,
// client records, credential hashes and passkeys, families' members,
// users' tokens and sessions, expiry entries, the outbox's due and state
// indexes, webhooks by owner, one-time tokens by user. See storage.Loader.
func (d *DB) Load(ctx context.Context, recs []storage.Record) error {
	byKind := map[string][]storage.Record{}
	for _, r := range recs {
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	for kind := range byKind {
		if !slices.Contains(storage.DumpKinds, kind) {
			return fmt.Errorf("load: unknown record kind %q: %w", kind, storage.ErrInvalid)
		}
	}
	err := d.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allDataBuckets {
			if k, _ := tx.Bucket(name).Cursor().First(); k != nil {
				return fmt.Errorf("bucket %s holds records: %w", name, storage.ErrNotEmpty)
			}
		}
		l := loader{tx: tx, d: d, links: map[string]storage.RefreshToken{}}
		for _, r := range byKind[storage.DumpRefreshToken] {
			t, err := decode[storage.RefreshToken](r)
			if err != nil {
				return err
			}
			l.links[t.Hash] = t
		}
		for _, kind := range storage.DumpKinds {
			if err := ctx.Err(); err != nil {
				return err
			}
			for _, r := range byKind[kind] {
				if err := l.load(r); err != nil {
					return fmt.Errorf("load %s record: %w", kind, err)
				}
			}
		}
		if err := l.deliveries(byKind[storage.DumpWebhookDelivery]); err != nil {
			return err
		}
		// What the users' search summaries and the client records index
		// are built from is all stored now (passkeys included).
		if err := buildUserIndexes(tx); err != nil {
			return err
		}
		return indexClientRecordsTx(tx)
	})
	if err != nil {
		return fmt.Errorf("load into %s: %w", d.path, err)
	}
	return nil
}

// loader writes one dump's records in one transaction.
type loader struct {
	tx *bbolt.Tx
	d  *DB
	// refresh links by hash, for their families' deadlines
	links map[string]storage.RefreshToken
}

// invalid is a record a consistent dump cannot hold.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), storage.ErrInvalid)
}

// free refuses an empty key or one another record of the dump took.
func free(b *bbolt.Bucket, key string) error {
	if key == "" {
		return invalid("empty key")
	}
	if has(b, key) {
		return invalid("%q is in the dump twice", key)
	}
	return nil
}

// loadNew puts a record under a key no other record of the dump took.
func loadNew(b *bbolt.Bucket, key string, raw []byte) error {
	if err := free(b, key); err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func appendSeq(b []byte, seq uint64) []byte { return binary.BigEndian.AppendUint64(b, seq) }

func decode[T any](r storage.Record) (T, error) { return storage.DecodeRecord[T](r) }

func (l *loader) load(r storage.Record) error {
	tx := l.tx
	switch r.Kind {
	case storage.DumpSetting:
		s, err := decode[storage.DumpedSetting](r)
		if err != nil {
			return err
		}
		return loadNew(tx.Bucket(bSettings), s.Name, append([]byte{}, s.Value...))
	case storage.DumpSigningKey:
		k, err := decode[storage.SigningKey](r)
		if err != nil {
			return err
		}
		return loadNew(tx.Bucket(bSigningKeys), k.ID, r.Value)
	case storage.DumpDirectory:
		dir, err := decode[storage.Directory](r)
		if err != nil {
			return err
		}
		return loadNew(tx.Bucket(bDirectories), dir.ID, r.Value)
	case storage.DumpGroup:
		g, err := decode[storage.Group](r)
		if err != nil {
			return err
		}
		if err := checkGroup(g); err != nil {
			return err
		}
		if err := loadNew(tx.Bucket(bGroupsByName), foldName(g.Name), []byte(g.ID)); err != nil {
			return err
		}
		return loadNew(tx.Bucket(bGroups), g.ID, r.Value)
	case storage.DumpUser:
		u, err := decode[storage.User](r)
		if err != nil {
			return err
		}
		if err := checkUser(u); err != nil {
			return invalid("user %q: %v", u.ID, err)
		}
		if has(tx.Bucket(bUsers), u.ID) {
			return invalid("user %q is in the dump twice", u.ID)
		}
		// Users come before reservations: nothing is reserved yet.
		if err := setUserIndexes(tx, nil, u, l.d.now()); err != nil {
			return fmt.Errorf("user %q: %w", u.ID, err)
		}
		return tx.Bucket(bUsers).Put([]byte(u.ID), r.Value)
	case storage.DumpReservedName:
		n, err := decode[storage.ReservedName](r)
		if err != nil {
			return err
		}
		if err := free(tx.Bucket(bReservedNames), n.Name); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bReservedNames), n.Name, reservation{UserID: n.UserID, Until: n.Until}); err != nil {
			return err
		}
		return putExpiry(tx, expReservedName, n.Until, n.Name)
	case storage.DumpAvatar:
		a, err := decode[storage.Avatar](r)
		if err != nil {
			return err
		}
		return loadNew(tx.Bucket(bAvatars), a.UserID, r.Value)
	case storage.DumpClient:
		c, err := decode[storage.Client](r)
		if err != nil {
			return err
		}
		return loadNew(tx.Bucket(bClients), c.ID, r.Value)
	case storage.DumpCredential:
		return l.credential(r)
	case storage.DumpSession:
		s, err := decode[storage.Session](r)
		if err != nil {
			return err
		}
		if s.ID == "" || has(tx.Bucket(bSessions), s.ID) {
			return invalid("session %q empty or in the dump twice", s.ID)
		}
		return putSessionTx(tx, s)
	case storage.DumpRefreshFamily:
		return l.family(r)
	case storage.DumpRefreshToken:
		t, err := decode[storage.RefreshToken](r)
		if err != nil {
			return err
		}
		switch {
		case t.Hash == "" || t.ID == "":
			return invalid("refresh token without hash or ID")
		case !has(tx.Bucket(bFamilies), t.FamilyID):
			return invalid("refresh token %s: family %q is not in the dump", t.ID, t.FamilyID)
		case has(tx.Bucket(bRefreshTokens), t.Hash) || has(tx.Bucket(bRefreshByID), t.ID):
			return invalid("refresh token %s is in the dump twice", t.ID)
		}
		return putRefreshTx(tx, t, nil)
	case storage.DumpAccessToken:
		a, err := decode[storage.AccessToken](r)
		if err != nil {
			return err
		}
		if a.ID == "" || has(tx.Bucket(bAccessTokens), a.ID) {
			return invalid("access token %q empty or in the dump twice", a.ID)
		}
		return putAccessTx(tx, a, nil) // grants come later: their LastUsedAt stays as dumped
	case storage.DumpGrant:
		g, err := decode[storage.Grant](r)
		if err != nil {
			return err
		}
		if g.UserID == "" || g.ClientID == "" {
			return invalid("grant without user or client")
		}
		return loadNew(tx.Bucket(bGrants), join(g.UserID, g.ClientID), r.Value)
	case storage.DumpOneTimeToken:
		t, err := decode[storage.OneTimeToken](r)
		if err != nil {
			return err
		}
		if err := loadNew(tx.Bucket(bOneTimeTokens), t.Hash, r.Value); err != nil {
			return err
		}
		if t.OnePerUser {
			if err := loadNew(tx.Bucket(bOneTimeByUser), string(oneTimeByUserKey(t.UserID, t.Purpose)), []byte(t.Hash)); err != nil {
				return err
			}
		}
		return putExpiry(tx, expOneTimeToken, t.ExpiresAt, t.Hash)
	case storage.DumpLoginAttempt:
		a, err := decode[storage.LoginAttempt](r)
		if err != nil {
			return err
		}
		if a.ID == "" {
			return invalid("login attempt without ID")
		}
		key := string(loginAttemptKey(a))
		if err := loadNew(tx.Bucket(bLoginAttempts), key, r.Value); err != nil {
			return err
		}
		return putExpiry(tx, expLoginAttempt, a.Time, key)
	case storage.DumpThrottle:
		t, err := decode[storage.Throttle](r)
		if err != nil {
			return err
		}
		if err := checkThrottleKey(t.Key); err != nil {
			return invalid("%v", err)
		}
		if err := loadNew(tx.Bucket(bThrottles), t.Key, r.Value); err != nil {
			return err
		}
		return putExpiry(tx, expThrottle, t.ExpiresAt, t.Key)
	case storage.DumpAuditEvent:
		e, err := decode[storage.AuditEvent](r)
		if err != nil {
			return err
		}
		if e.ID == "" || !storage.ValidAuditID(e.ID) || !storage.ValidAuditID(e.ActorID) || !storage.ValidAuditID(e.TargetUserID) {
			return invalid("audit event %q: malformed ID, actor or target", e.ID)
		}
		if err := auditFreeTx(tx, e); err != nil {
			return invalid("audit event %q is in the dump twice", e.ID)
		}
		return appendAuditTx(tx, e, r.Value)
	case storage.DumpOutboxMessage:
		m, err := decode[storage.OutboxMessage](r)
		if err != nil {
			return err
		}
		if !validOutboxName(m.ID) {
			return invalid("outbox message %q: malformed ID", m.ID)
		}
		if err := loadNew(tx.Bucket(bOutbox), m.ID, r.Value); err != nil {
			return err
		}
		return putOutboxIndexes(tx, m)
	case storage.DumpWebhook:
		w, err := decode[storage.Webhook](r)
		if err != nil {
			return err
		}
		if err := loadNew(tx.Bucket(bWebhooks), w.ID, r.Value); err != nil {
			return err
		}
		return tx.Bucket(bWebhooksByOwner).Put([]byte(join(w.OwnerUserID, w.ID)), emptyValue)
	case storage.DumpWebhookDelivery:
		return nil // after every record, in order (deliveries)
	}
	return invalid("unknown kind %q", r.Kind)
}

// credential stores a credential with its hash and passkey indexes and
// expiry entry (its client record and the owner's passkey flag are built
// at the end).
func (l *loader) credential(r storage.Record) error {
	tx := l.tx
	c, err := decode[storage.Credential](r)
	if err != nil {
		return err
	}
	if c.ID == "" || c.UserID == "" || c.Kind == "" {
		return invalid("credential %q: empty ID, user ID or kind", c.ID)
	}
	key := credentialKey(c.UserID, c.ID)
	if err := loadNew(tx.Bucket(bCredentials), key, r.Value); err != nil {
		return err
	}
	if c.Hash != "" {
		if err := loadNew(tx.Bucket(bCredentialsByHash), c.Hash, []byte(key)); err != nil {
			return err
		}
	}
	if len(c.WebAuthnID) > 0 {
		if err := loadNew(tx.Bucket(bCredentialsByWebAuthn), hex.EncodeToString(c.WebAuthnID), []byte(key)); err != nil {
			return err
		}
	}
	return putExpiry(tx, expCredential, c.ExpiresAt, key)
}

// family stores a refresh-token family with its deadlines, which are its
// live link's; the links come next, so they are read from the dump.
func (l *loader) family(r storage.Record) error {
	f, err := decode[storage.RefreshFamily](r)
	if err != nil {
		return err
	}
	live, ok := l.links[f.Live]
	if !ok {
		return invalid("refresh family %q: its live link is not in the dump", f.ID)
	}
	fam := family{ID: f.ID, UserID: f.UserID, ClientID: f.ClientID, Live: f.Live, Prev: f.Prev,
		ExpiresAt: live.ExpiresAt, IdleExpiresAt: live.IdleExpiresAt}
	if err := free(l.tx.Bucket(bFamilies), f.ID); err != nil {
		return err
	}
	if err := putJSON(l.tx.Bucket(bFamilies), f.ID, fam); err != nil {
		return err
	}
	if err := putExpiry(l.tx, expFamily, fam.end(), fam.ID); err != nil {
		return err
	}
	if fam.UserID == "" {
		return nil
	}
	return l.tx.Bucket(bUserTokens).Put([]byte(join(fam.UserID, fam.ClientID, memberFamily, fam.ID)), emptyValue)
}

// deliveries appends each webhook's log in order, numbered by the
// database's sequence as RecordWebhookDelivery numbers them.
func (l *loader) deliveries(recs []storage.Record) error {
	ds := make([]storage.DumpedDelivery, 0, len(recs))
	for _, r := range recs {
		del, err := decode[storage.DumpedDelivery](r)
		if err != nil {
			return err
		}
		if !has(l.tx.Bucket(bWebhooks), del.WebhookID) {
			return invalid("delivery of webhook %q, which is not in the dump", del.WebhookID)
		}
		ds = append(ds, del)
	}
	slices.SortStableFunc(ds, func(a, b storage.DumpedDelivery) int {
		return cmp.Or(cmp.Compare(a.WebhookID, b.WebhookID), cmp.Compare(a.N, b.N))
	})
	logs := l.tx.Bucket(bWebhookDeliveries)
	for _, del := range ds {
		seq, err := logs.NextSequence()
		if err != nil {
			return err
		}
		key := appendSeq([]byte(join(del.WebhookID, "")), seq)
		if err := putJSON(logs, string(key), del.Delivery); err != nil {
			return err
		}
	}
	return nil
}
