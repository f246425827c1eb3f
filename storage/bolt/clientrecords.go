package bolt

import (
	"bytes"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// The client_records index lists, per app, what was issued to it or is
// bound to it, so that deleting the app (or revoking its tokens at a
// secret rotation) reads that app's records only, never every token,
// grant or credential of every user. Keys are client ID NUL kind NUL key:
//
//	cid NUL a NUL access token ID     every access token (machine tokens too)
//	cid NUL f NUL family ID           every refresh-token family
//	cid NUL g NUL user ID             every grant (consent) to the app
//	cid NUL p NUL uid NUL credential  every credential restricted to the app (app passwords)
//
// Each entry is written and deleted in the same transaction as its record.
const (
	clientAccess     = "a"
	clientFamily     = "f"
	clientGrant      = "g"
	clientCredential = "p"
)

func clientRecordKey(clientID, kind, key string) []byte {
	return []byte(join(clientID, kind, key))
}

// indexClientRecord adds an entry; an empty client ID (nothing to index
// under) adds none.
func indexClientRecord(tx *bbolt.Tx, clientID, kind, key string) error {
	if clientID == "" {
		return nil
	}
	return tx.Bucket(bClientRecords).Put(clientRecordKey(clientID, kind, key), emptyValue)
}

func unindexClientRecord(tx *bbolt.Tx, clientID, kind, key string) error {
	if clientID == "" {
		return nil
	}
	return tx.Bucket(bClientRecords).Delete(clientRecordKey(clientID, kind, key))
}

// clientScope says which of an app's records deleteClientRecordsTx removes.
type clientScope struct {
	tokens bool // access tokens and refresh-token families
	bound  bool // grants and credentials restricted to the app
}

// deleteClientRecordsTx deletes the records of client id that scope names,
// with every index entry that points at them, and returns how many live
// tokens went (access tokens plus unrotated refresh links, as
// RevokeUserClient counts them).
func deleteClientRecordsTx(tx *bbolt.Tx, clientID string, scope clientScope) (int, error) {
	if clientID == "" {
		return 0, fmt.Errorf("delete the records of a client: empty client ID")
	}
	idx := tx.Bucket(bClientRecords)
	prefix := clientID + "\x00"
	n := 0
	for _, k := range prefixKeys(idx, prefix) {
		kind, key, ok := bytes.Cut(k[len(prefix):], []byte{0})
		if !ok {
			return n, fmt.Errorf("bad client record index key %q", k)
		}
		switch string(kind) {
		case clientFamily:
			if !scope.tokens {
				continue
			}
			c, err := revokeFamilyTx(tx, string(key))
			if err != nil {
				return n, err
			}
			n += c.live + c.access
		case clientAccess:
			if !scope.tokens {
				continue
			}
			found, err := deleteAccessTx(tx, string(key))
			if err != nil {
				return n, err
			}
			n += count(found)
		case clientGrant:
			if !scope.bound {
				continue
			}
			if err := tx.Bucket(bGrants).Delete([]byte(join(string(key), clientID))); err != nil {
				return n, err
			}
		case clientCredential:
			if !scope.bound {
				continue
			}
			if _, err := deleteCredentialTx(tx, string(key)); err != nil {
				return n, err
			}
		default:
			return n, fmt.Errorf("bad client record index key %q", k)
		}
		// The record's own delete drops its entry; an entry whose record
		// was gone already goes here.
		if err := idx.Delete(k); err != nil {
			return n, err
		}
	}
	return n, nil
}

// indexClientRecordsTx fills the client_records index from the records
// stored before it existed (schema 7).
func indexClientRecordsTx(tx *bbolt.Tx) error {
	err := tx.Bucket(bAccessTokens).ForEach(func(k, v []byte) error {
		var a storage.AccessToken
		if err := unmarshalJSON(k, v, &a); err != nil {
			return err
		}
		return indexClientRecord(tx, a.ClientID, clientAccess, a.ID)
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bFamilies).ForEach(func(k, v []byte) error {
		var f family
		if err := unmarshalJSON(k, v, &f); err != nil {
			return err
		}
		return indexClientRecord(tx, f.ClientID, clientFamily, f.ID)
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bGrants).ForEach(func(k, v []byte) error {
		var g storage.Grant
		if err := unmarshalJSON(k, v, &g); err != nil {
			return err
		}
		return indexClientRecord(tx, g.ClientID, clientGrant, g.UserID)
	})
	if err != nil {
		return err
	}
	return tx.Bucket(bCredentials).ForEach(func(k, v []byte) error {
		var c storage.Credential
		if err := unmarshalJSON(k, v, &c); err != nil {
			return err
		}
		return indexClientRecord(tx, c.ClientID, clientCredential, string(k))
	})
}
