package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Copying a whole store to another backend (keyport migrate).
//
// A dump is a stream of Records: a kind and the record's JSON, in the
// form of the kind's type below. Every backend keeps the same logical
// records (storage/bolt in buckets, storage/postgres in tables with a
// JSON record column), so the dump carries the records and the state the
// public API does not show (refresh-token families with their live and
// previous links, rotated links, sealed grace values, name reservations,
// outbox messages in whatever state, webhook delivery logs, throttles),
// and the loading backend rebuilds its own indexes from them (user search,
// group members, client records, expiry entries, the one-per-user index of
// one-time tokens). Sealed values (signing keys, TOTP and directory
// secrets, webhook secrets) are copied as they are: source and target
// share the sealing key.
//
// Sign-ins in progress (auth requests, codes and the redeemed-code
// markers, all minutes-long) are not dumped: people signing in during a
// migration start again.

// Dumper lists every record of a store (but sign-ins in progress), from
// one consistent snapshot, calling fn for each; fn's error stops the dump
// and is returned. Within a kind, records come in the kind's natural
// order; the delivery log of a webhook comes oldest first.
type Dumper interface {
	Dump(ctx context.Context, fn func(Record) error) error
}

// Loader stores a dump in an empty store, all or nothing (storage/bolt:
// one transaction; storage/postgres: one transaction). A store that holds
// any record gives ErrNotEmpty and changes nothing; a malformed record,
// or one that names a record the dump lacks (a refresh-token family whose
// live link is missing), gives ErrInvalid.
type Loader interface {
	Load(ctx context.Context, recs []Record) error
}

// ErrNotEmpty is Loader.Load's refusal of a store that holds records.
var ErrNotEmpty = errors.New("the target store is not empty")

// Record is one dumped record: its Kind (a Dump* constant) and Value, its
// JSON in the form of the kind's type.
type Record struct {
	Kind  string          `json:"kind"`
	Value json.RawMessage `json:"value"`
}

// Kinds of dumped records and the type each Value holds, in the order a
// loader stores them (what a record refers to comes before it).
const (
	DumpSetting         = "setting"          // DumpedSetting
	DumpSigningKey      = "signing_key"      // SigningKey
	DumpDirectory       = "directory"        // Directory
	DumpGroup           = "group"            // Group
	DumpUser            = "user"             // User
	DumpReservedName    = "reserved_name"    // ReservedName
	DumpAvatar          = "avatar"           // Avatar
	DumpClient          = "client"           // Client
	DumpCredential      = "credential"       // Credential
	DumpSession         = "session"          // Session
	DumpRefreshFamily   = "refresh_family"   // RefreshFamily
	DumpRefreshToken    = "refresh_token"    // RefreshToken
	DumpAccessToken     = "access_token"     // AccessToken
	DumpGrant           = "grant"            // Grant (after the tokens, whose stores move LastUsedAt)
	DumpOneTimeToken    = "one_time_token"   // OneTimeToken
	DumpLoginAttempt    = "login_attempt"    // LoginAttempt
	DumpThrottle        = "throttle"         // Throttle
	DumpAuditEvent      = "audit_event"      // AuditEvent
	DumpOutboxMessage   = "outbox_message"   // OutboxMessage
	DumpWebhook         = "webhook"          // Webhook
	DumpWebhookDelivery = "webhook_delivery" // DumpedDelivery
)

// DumpKinds are every kind, in load order.
var DumpKinds = []string{
	DumpSetting, DumpSigningKey, DumpDirectory, DumpGroup, DumpUser, DumpReservedName, DumpAvatar,
	DumpClient, DumpCredential, DumpSession, DumpRefreshFamily, DumpRefreshToken, DumpAccessToken,
	DumpGrant, DumpOneTimeToken, DumpLoginAttempt, DumpThrottle, DumpAuditEvent, DumpOutboxMessage,
	DumpWebhook, DumpWebhookDelivery,
}

// DumpedSetting is a setting (Settings) in a dump.
type DumpedSetting struct {
	Name  string `json:"name"`
	Value []byte `json:"value,omitempty"`
}

// ReservedName is a deleted user's username or email (lower case),
// unavailable until Until (Users.DeleteUser).
type ReservedName struct {
	Name   string    `json:"name"`
	UserID string    `json:"user_id"`
	Until  time.Time `json:"until"`
}

// RefreshFamily is a refresh-token family's own state: whose it is, its
// live link and the link that one replaced (whose presentation within the
// live link's grace is a retry, not reuse). Its deadlines are the live
// link's, which the dump holds as a DumpRefreshToken.
type RefreshFamily struct {
	ID       string `json:"id"`
	UserID   string `json:"user_id"`
	ClientID string `json:"client_id"`
	Live     string `json:"live"`           // hash of the live link
	Prev     string `json:"prev,omitempty"` // hash of the link Live replaced
}

// DumpedDelivery is one entry of a webhook's delivery log: N counts from 1
// for the oldest entry the log keeps.
type DumpedDelivery struct {
	WebhookID string          `json:"webhook_id"`
	N         int             `json:"n"`
	Delivery  WebhookDelivery `json:"delivery"`
}

// NewRecord encodes v as a record of kind.
func NewRecord(kind string, v any) (Record, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("encode %s record: %w", kind, err)
	}
	return Record{Kind: kind, Value: raw}, nil
}

// DecodeRecord decodes r's Value into T, the type of r's kind.
func DecodeRecord[T any](r Record) (T, error) {
	var v T
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return v, fmt.Errorf("decode %s record: %v: %w", r.Kind, err, ErrInvalid)
	}
	return v, nil
}

// KindSummary is what VerifyCopy compares of one kind: how many records,
// and a digest of them that does not depend on their order.
type KindSummary struct {
	Kind   string
	Count  int
	Digest [sha256.Size]byte
}

// Summarize dumps d and summarizes every kind (see Summarizer).
func Summarize(ctx context.Context, d Dumper) ([]KindSummary, error) {
	var sum Summarizer
	if err := d.Dump(ctx, sum.Add); err != nil {
		return nil, err
	}
	return sum.Result(), nil
}

// Summarizer adds records up into KindSummaries. The zero value is ready.
type Summarizer struct {
	hashes map[string][][sha256.Size]byte
}

// Add counts r and its digest; a record of an unknown kind, or one whose
// value is not its kind's type, gives ErrInvalid.
func (s *Summarizer) Add(r Record) error {
	c, err := canonicalRecord(r)
	if err != nil {
		return err
	}
	if s.hashes == nil {
		s.hashes = map[string][][sha256.Size]byte{}
	}
	s.hashes[r.Kind] = append(s.hashes[r.Kind], sha256.Sum256(c))
	return nil
}

// Result summarizes every kind, in DumpKinds order (a kind without records
// has Count 0).
func (s *Summarizer) Result() []KindSummary {
	out := make([]KindSummary, 0, len(DumpKinds))
	for _, kind := range DumpKinds {
		hs := slices.Clone(s.hashes[kind])
		slices.SortFunc(hs, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
		h := sha256.New()
		for _, x := range hs {
			h.Write(x[:])
		}
		k := KindSummary{Kind: kind, Count: len(hs)}
		copy(k.Digest[:], h.Sum(nil))
		out = append(out, k)
	}
	return out
}

// columnTimes are the kinds whose times storage/postgres keeps in time
// columns, to the microsecond, rather than in the record's JSON.
var columnTimes = map[string]bool{DumpSigningKey: true, DumpDirectory: true, DumpReservedName: true, DumpAvatar: true, DumpGrant: true}

// canonicalRecord is r's value in one form whatever wrote it: decoded
// into its kind's type and encoded again (so a field an older version did
// not write compares equal to its zero value), and for the kinds of
// columnTimes with every time in UTC to the microsecond.
func canonicalRecord(r Record) ([]byte, error) {
	v, err := decodeKind(r)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(v)
	if err != nil || !columnTimes[r.Kind] {
		return raw, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return json.Marshal(microseconds(tree))
}

func decodeKind(r Record) (any, error) {
	switch r.Kind {
	case DumpSetting:
		return DecodeRecord[DumpedSetting](r)
	case DumpSigningKey:
		return DecodeRecord[SigningKey](r)
	case DumpDirectory:
		return DecodeRecord[Directory](r)
	case DumpGroup:
		return DecodeRecord[Group](r)
	case DumpUser:
		return DecodeRecord[User](r)
	case DumpReservedName:
		return DecodeRecord[ReservedName](r)
	case DumpAvatar:
		return DecodeRecord[Avatar](r)
	case DumpClient:
		return DecodeRecord[Client](r)
	case DumpCredential:
		return DecodeRecord[Credential](r)
	case DumpSession:
		return DecodeRecord[Session](r)
	case DumpRefreshFamily:
		return DecodeRecord[RefreshFamily](r)
	case DumpRefreshToken:
		return DecodeRecord[RefreshToken](r)
	case DumpAccessToken:
		return DecodeRecord[AccessToken](r)
	case DumpGrant:
		return DecodeRecord[Grant](r)
	case DumpOneTimeToken:
		return DecodeRecord[OneTimeToken](r)
	case DumpLoginAttempt:
		return DecodeRecord[LoginAttempt](r)
	case DumpThrottle:
		return DecodeRecord[Throttle](r)
	case DumpAuditEvent:
		return DecodeRecord[AuditEvent](r)
	case DumpOutboxMessage:
		return DecodeRecord[OutboxMessage](r)
	case DumpWebhook:
		return DecodeRecord[Webhook](r)
	case DumpWebhookDelivery:
		return DecodeRecord[DumpedDelivery](r)
	}
	return nil, fmt.Errorf("unknown record kind %q: %w", r.Kind, ErrInvalid)
}

// microseconds rewrites every string of a decoded JSON tree that is a
// time (RFC 3339) in UTC, cut to the microsecond.
func microseconds(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = microseconds(e)
		}
	case []any:
		for i, e := range x {
			x[i] = microseconds(e)
		}
	case string:
		if len(x) >= len("2006-01-02T15:04:05Z") && x[4] == '-' && x[10] == 'T' {
			if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
				return t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
			}
		}
	}
	return v
}
