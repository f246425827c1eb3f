package bolt

import (
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Reserved names: a deleted user's username and email (in lower case, as
// the unique indexes keep them, and in one namespace as they share one)
// map to a reservation until it ends, so a new account cannot take over
// the old one's identity at apps. Each has an expiry entry; Sweep forgets
// it then. Before Sweep comes, an ended reservation no longer refuses
// anyone.

type reservation struct {
	UserID string    `json:"user_id"`
	Until  time.Time `json:"until"`
}

// reserveNameTx reserves name (lower case) until then; a reservation that
// ends later is kept.
func reserveNameTx(tx *bbolt.Tx, name, userID string, until time.Time) error {
	if name == "" {
		return nil
	}
	b := tx.Bucket(bReservedNames)
	var old reservation
	found, err := getJSON(b, name, &old)
	if err != nil {
		return err
	}
	if found {
		if !until.After(old.Until) {
			return nil
		}
		if err := deleteExpiry(tx, expReservedName, old.Until, name); err != nil {
			return err
		}
	}
	if err := putJSON(b, name, reservation{UserID: userID, Until: until}); err != nil {
		return err
	}
	return putExpiry(tx, expReservedName, until, name)
}

// checkReservedTx refuses key (a lower-case name) while it is reserved.
func checkReservedTx(tx *bbolt.Tx, what, value, key string, now time.Time) error {
	var r reservation
	found, err := getJSON(tx.Bucket(bReservedNames), key, &r)
	if err != nil {
		return err
	}
	if found && r.Until.After(now) {
		return &storage.NameConflict{Field: what, Value: value, Reserved: true, Until: r.Until}
	}
	return nil
}

func sweepReservedName(tx *bbolt.Tx, name string, rep *storage.SweepReport) (int, error) {
	b := tx.Bucket(bReservedNames)
	found := has(b, name)
	rep.ReservedNames += count(found)
	return count(found), b.Delete([]byte(name))
}
