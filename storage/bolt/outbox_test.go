package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// checkOutboxIndexes rebuilds the outbox's due and state indexes from the
// messages and compares them with the stored ones, both ways, and claims
// the expiry entries of finished messages (through wantExpiry).
func checkOutboxIndexes(tx *bbolt.Tx, wantExpiry func(kind byte, at time.Time, key string)) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want := map[string]map[string]bool{string(bOutboxDue): {}, string(bOutboxByState): {}}
	_ = tx.Bucket(bOutbox).ForEach(func(k, v []byte) error {
		var m storage.OutboxMessage
		if _, err := getJSON(tx.Bucket(bOutbox), string(k), &m); err != nil {
			fail("outbox %q: %v", k, err)
			return nil
		}
		if m.ID != string(k) {
			fail("outbox message %q stored under %q", m.ID, k)
		}
		want[string(bOutboxByState)][string(outboxStateKey(m.State, m.ID))] = true
		switch m.State {
		case storage.OutboxPending:
			want[string(bOutboxDue)][string(outboxDueKey(m))] = true
		case storage.OutboxDelivered, storage.OutboxFailed:
			if !m.LeaseUntil.IsZero() {
				fail("finished outbox message %q has a lease", m.ID)
			}
			wantExpiry(expOutbox, m.DeliveredAt.Add(storage.OutboxRetention), m.ID)
		default:
			fail("outbox message %q in state %q", m.ID, m.State)
		}
		return nil
	})
	for _, name := range [][]byte{bOutboxDue, bOutboxByState} {
		_ = tx.Bucket(name).ForEach(func(k, _ []byte) error {
			if !want[string(name)][string(k)] {
				fail("%s: stray entry %q", name, k)
			}
			delete(want[string(name)], string(k))
			return nil
		})
		for k := range want[string(name)] {
			fail("%s: no entry %q", name, k)
		}
	}
	return errs
}

// A database of schema 8, written before the outbox, gets its buckets at
// open and can take messages at once.
func TestMigrateAddsOutbox(t *testing.T) {
	path := fileAtSchema(t, 8)
	at := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	d := openTest(t, path, Options{Now: func() time.Time { return at }})
	if err := d.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "mail", CreatedAt: at}); err != nil {
		t.Fatalf("enqueue after migration: %v", err)
	}
	got, err := d.ClaimOutbox(t.Context(), at, time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != "m1" {
		t.Fatalf("claim after migration: %+v, %v", got, err)
	}
}

// A producer commits its change and its messages in one transaction, the
// way a write method with enqueueOutboxTx does: a taken message ID
// refuses the whole change before its first write, and a free one commits
// both.
func TestEnqueueOutboxTxSharesTheProducersCommit(t *testing.T) {
	ctx := t.Context()
	at := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: func() time.Time { return at }})
	if err := d.EnqueueOutbox(ctx, storage.OutboxMessage{ID: "taken", Kind: "mail", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	// produce is a write method of the producer kind: it puts a setting
	// (its own change) and its messages in one commit.
	produce := func(value string, msgs ...storage.OutboxMessage) error {
		w, err := newOutboxWrite(msgs)
		if err != nil {
			return err
		}
		return d.batch(func(tx *bbolt.Tx) error {
			if err := w.free(tx); err != nil {
				return err
			}
			if err := tx.Bucket(bSettings).Put([]byte("producer"), []byte(value)); err != nil {
				return err
			}
			return w.put(tx)
		})
	}
	setting := func() string {
		v, err := d.GetSetting(ctx, "producer")
		if errors.Is(err, storage.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(v)
	}

	err := produce("first", storage.OutboxMessage{ID: "new", Kind: "mail", CreatedAt: at}, storage.OutboxMessage{ID: "taken", Kind: "mail", CreatedAt: at})
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("produce with a taken message ID: %v, want ErrConflict", err)
	}
	if v := setting(); v != "" {
		t.Fatalf("a refused message committed the producer's change: setting %q", v)
	}
	err = produce("second", storage.OutboxMessage{ID: "big", Kind: "mail", CreatedAt: at, Payload: make([]byte, storage.MaxOutboxPayloadBytes+1)})
	if !errors.Is(err, storage.ErrTooLarge) {
		t.Fatalf("produce with a payload too large: %v, want ErrTooLarge", err)
	}
	if err := produce("third", storage.OutboxMessage{ID: "new", Kind: "mail", CreatedAt: at}); err != nil {
		t.Fatalf("produce: %v", err)
	}
	if v := setting(); v != "third" {
		t.Fatalf("setting after the producer's commit: %q, want third", v)
	}
	got, err := d.ClaimOutbox(ctx, at, time.Minute, 10)
	if err != nil || len(got) != 2 || got[0].ID != "new" && got[1].ID != "new" {
		t.Fatalf("claim after the producer's commit: %+v, %v", got, err)
	}
}

// fileAtSchema writes a database file as schema version ran the first
// version migrations, for the migration tests, and returns its path.
func fileAtSchema(t *testing.T, version int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keyport.db")
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for v := range version {
			if err := migrations[v](tx); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket(bMeta)
		if err != nil {
			return err
		}
		return meta.Put(kSchemaVersion, []byte(strconv.Itoa(version)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
