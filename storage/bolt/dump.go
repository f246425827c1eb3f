package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

var _ storage.Dumper = (*DB)(nil)

// dumpBuckets are the buckets whose values are a kind's records as they
// are (the JSON of the kind's type); the other kinds are built in Dump.
var dumpBuckets = []struct {
	kind   string
	bucket []byte
}{
	{storage.DumpSigningKey, bSigningKeys},
	{storage.DumpDirectory, bDirectories},
	{storage.DumpGroup, bGroups},
	{storage.DumpUser, bUsers},
	{storage.DumpAvatar, bAvatars},
	{storage.DumpClient, bClients},
	{storage.DumpCredential, bCredentials},
	{storage.DumpSession, bSessions},
	{storage.DumpRefreshToken, bRefreshTokens},
	{storage.DumpAccessToken, bAccessTokens},
	{storage.DumpGrant, bGrants},
	{storage.DumpOneTimeToken, bOneTimeTokens},
	{storage.DumpLoginAttempt, bLoginAttempts},
	{storage.DumpThrottle, bThrottles},
	{storage.DumpAuditEvent, bAudit},
	{storage.DumpOutboxMessage, bOutbox},
	{storage.DumpWebhook, bWebhooks},
}

// dumpedElsewhere are the buckets Dump reads into records of their own
// shape, besides dumpBuckets.
var dumpedElsewhere = [][]byte{bSettings, bReservedNames, bFamilies, bWebhookDeliveries}

// Dump lists every record of the main file from one read transaction
// (writers go on meanwhile); the flow file (sign-ins in progress) is left
// out. See storage.Dumper.
func (d *DB) Dump(ctx context.Context, fn func(storage.Record) error) error {
	err := d.db.View(func(tx *bbolt.Tx) error {
		emit := func(kind string, v any) error {
			r, err := storage.NewRecord(kind, v)
			if err != nil {
				return err
			}
			return fn(r)
		}
		err := tx.Bucket(bSettings).ForEach(func(k, v []byte) error {
			return emit(storage.DumpSetting, storage.DumpedSetting{Name: string(k), Value: v})
		})
		if err != nil {
			return err
		}
		for _, b := range dumpBuckets {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := tx.Bucket(b.bucket).ForEach(func(_, v []byte) error {
				return fn(storage.Record{Kind: b.kind, Value: bytes.Clone(v)})
			})
			if err != nil {
				return err
			}
		}
		err = tx.Bucket(bReservedNames).ForEach(func(k, v []byte) error {
			var r reservation
			if err := unmarshalJSON(k, v, &r); err != nil {
				return err
			}
			return emit(storage.DumpReservedName, storage.ReservedName{Name: string(k), UserID: r.UserID, Until: r.Until})
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bFamilies).ForEach(func(k, v []byte) error {
			var f family
			if err := unmarshalJSON(k, v, &f); err != nil {
				return err
			}
			return emit(storage.DumpRefreshFamily, storage.RefreshFamily{ID: f.ID, UserID: f.UserID, ClientID: f.ClientID, Live: f.Live, Prev: f.Prev})
		})
		if err != nil {
			return err
		}
		// Keys are webhook ID NUL seq(8): each log oldest first.
		var hook string
		n := 0
		return tx.Bucket(bWebhookDeliveries).ForEach(func(k, v []byte) error {
			id, _, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("bad webhook delivery key %q", k)
			}
			if string(id) != hook {
				hook, n = string(id), 0
			}
			n++
			var del storage.WebhookDelivery
			if err := json.Unmarshal(v, &del); err != nil {
				return fmt.Errorf("decode delivery %x: %w", k, err)
			}
			return emit(storage.DumpWebhookDelivery, storage.DumpedDelivery{WebhookID: hook, N: n, Delivery: del})
		})
	})
	if err != nil {
		return fmt.Errorf("dump database %s: %w", d.path, err)
	}
	return nil
}
