package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

var _ storage.Loader = (*DB)(nil)

// Load stores a dump (storage.Dumper) in this empty database: one
// transaction that locks every table against writers (EXCLUSIVE: readers
// go on), checks that none holds a row, and COPYs each table's rows, all
// of them or, on any error, none. Lookup columns and the users' login,
// identity and group tables are built from the records; record columns
// take the dumped JSON as it is. See storage.Loader.
func (d *DB) Load(ctx context.Context, recs []storage.Record) error {
	rows, err := loadRows(recs)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockEmpty(ctx, tx); err != nil {
			return err
		}
		for _, t := range rows.order {
			if len(t.rows) == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, t.columns, pgx.CopyFromRows(t.rows)); err != nil {
				return fmt.Errorf("copy %d rows into %s: %w", len(t.rows), t.table, err)
			}
		}
		return notifyTx(ctx, tx, storage.ChangeClients)
	})
	d.clients.drop()
	return dbErr("load", err)
}

// lockEmpty locks every table of the schema (but the migrations' own)
// against writes until tx ends and refuses a table with a row.
func lockEmpty(ctx context.Context, tx pgx.Tx) error {
	r, err := tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_version' ORDER BY tablename`)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(r, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return nil
	}
	quoted := make([]string, len(tables))
	probes := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = pgx.Identifier{t}.Sanitize()
		probes[i] = fmt.Sprintf("SELECT %d WHERE EXISTS (SELECT 1 FROM %s)", i, quoted[i])
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(quoted, ", ")+" IN EXCLUSIVE MODE"); err != nil {
		return fmt.Errorf("lock the tables: %w", err)
	}
	var first int
	err = tx.QueryRow(ctx, strings.Join(probes, " UNION ALL ")+" LIMIT 1").Scan(&first)
	switch {
	case err == nil:
		return fmt.Errorf("table %s holds rows: %w", tables[first], storage.ErrNotEmpty)
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	}
	return err
}

// loadedTables are the tables Load fills, in an order where what a row
// refers to (a foreign key) comes first, with the columns it fills. Every
// table of the schema is here or in notCopiedTables
// (TestEveryTableIsCopied).
var loadedTables = []table{
	{table: "settings", columns: []string{"name", "value"}},
	{table: "signing_keys", columns: []string{"id", "algorithm", "sealed_key", "public_jwk", "created_at", "retired_at", "verify_till"}},
	{table: "directories", columns: []string{"id", "type", "settings", "sealed_secret", "created_at", "updated_at"}},
	{table: "groups", columns: []string{"id", "name_key", "record"}},
	{table: "users", columns: []string{"id", "created_at", "last_login", "admin", "blocked", "totp", "source", "search", "record"}},
	{table: "user_logins", columns: []string{"name", "user_id", "field"}},
	{table: "user_identities", columns: []string{"connection", "external_id", "user_id"}},
	{table: "user_groups", columns: []string{"user_id", "name"}},
	{table: "reserved_names", columns: []string{"name", "user_id", "until"}},
	{table: "avatars", columns: []string{"user_id", "content_type", "data", "updated_at"}},
	{table: "clients", columns: []string{"id", "record"}},
	{table: "credentials", columns: []string{"id", "user_id", "kind", "hash", "webauthn_id", "client_id", "created_at", "expires_at", "valid_until", "warned", "record"}},
	{table: "sessions", columns: []string{"id", "user_id", "created_at", "expires_at", "record"}},
	{table: "refresh_families", columns: []string{"id", "user_id", "client_id", "live_hash", "prev_hash", "end_ns"}},
	{table: "refresh_tokens", columns: []string{"hash", "id", "family_id", "rotated", "grace_ns", "record"}},
	{table: "access_tokens", columns: []string{"id", "client_id", "user_id", "family_id", "expires_ns", "record"}},
	{table: "grants", columns: []string{"user_id", "client_id", "scopes", "created_at", "updated_at", "last_used_at"}},
	{table: "one_time_tokens", columns: []string{"hash", "purpose", "user_id", "one_per_user", "expires_at", "record"}},
	{table: "login_attempts", columns: []string{"user_id", "at", "id", "record"}},
	{table: "throttles", columns: []string{"key", "expires_at", "record"}},
	{table: "audit_events", columns: []string{"at_ns", "id", "type", "actor_id", "target_user_id", "record"}},
	{table: "outbox", columns: []string{"id", "kind", "state", "due_ns", "ended_at", "record"}},
	{table: "webhooks", columns: []string{"id", "owner_user_id", "created_at", "record"}},
	{table: "webhook_deliveries", columns: []string{"webhook_id", "record"}},
}

// notCopiedTables are the tables a dump leaves out: the migrations' own,
// and sign-ins in progress (which live for minutes).
var notCopiedTables = []string{"schema_version",
	// Sign-ins in progress, their codes and the redemptions that catch a
	// code's replay: minutes-long, started again by whoever was signing in.
	"auth_requests", "auth_codes", "redeemed_codes",
	// Device authorizations (RFC 8628): minutes-long too.
	"device_authorizations"}

// table is the rows Load copies into one table.
type table struct {
	table   string
	columns []string
	rows    [][]any
}

// loadTables are the rows of every table, in an order where what a row
// refers to (a foreign key) comes first.
type loadTables struct {
	order []*table
	named map[string]*table
}

func (l *loadTables) add(name string, row ...any) {
	l.named[name].rows = append(l.named[name].rows, row)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), storage.ErrInvalid)
}

func decode[T any](r storage.Record) (T, error) { return storage.DecodeRecord[T](r) }

// loadRows turns a dump into table rows, checking what the tables'
// constraints would only report as a failed COPY: families whose live
// link is missing, links and deliveries whose family or webhook is.
func loadRows(recs []storage.Record) (*loadTables, error) {
	l := &loadTables{named: map[string]*table{}}
	for _, t := range loadedTables {
		l.order = append(l.order, &t)
		l.named[t.table] = &t
	}

	links := map[string]storage.RefreshToken{}
	families := map[string]bool{}
	hooks := map[string]bool{}
	var deliveries []storage.DumpedDelivery
	for _, r := range recs {
		switch r.Kind {
		case storage.DumpRefreshToken:
			t, err := decode[storage.RefreshToken](r)
			if err != nil {
				return nil, err
			}
			links[t.Hash] = t
		case storage.DumpRefreshFamily:
			f, err := decode[storage.RefreshFamily](r)
			if err != nil {
				return nil, err
			}
			families[f.ID] = true
		case storage.DumpWebhook:
			w, err := decode[storage.Webhook](r)
			if err != nil {
				return nil, err
			}
			hooks[w.ID] = true
		}
	}
	for _, r := range recs {
		if err := l.record(r, links, families, hooks, &deliveries); err != nil {
			return nil, fmt.Errorf("%s record: %w", r.Kind, err)
		}
	}
	slices.SortStableFunc(deliveries, func(a, b storage.DumpedDelivery) int {
		return cmp.Or(cmp.Compare(a.WebhookID, b.WebhookID), cmp.Compare(a.N, b.N))
	})
	for _, del := range deliveries {
		rec, err := marshal(del.Delivery)
		if err != nil {
			return nil, err
		}
		l.add("webhook_deliveries", del.WebhookID, rec)
	}
	return l, nil
}

func (l *loadTables) record(r storage.Record, links map[string]storage.RefreshToken, families, hooks map[string]bool, deliveries *[]storage.DumpedDelivery) error {
	raw := []byte(r.Value)
	switch r.Kind {
	case storage.DumpSetting:
		s, err := decode[storage.DumpedSetting](r)
		if err != nil {
			return err
		}
		l.add("settings", s.Name, append([]byte{}, s.Value...))
	case storage.DumpSigningKey:
		k, err := decode[storage.SigningKey](r)
		if err != nil {
			return err
		}
		l.add("signing_keys", k.ID, k.Algorithm, k.SealedKey, k.PublicJWK, k.CreatedAt, orNull(k.RetiredAt), orNull(k.VerifyTill))
	case storage.DumpDirectory:
		dir, err := decode[storage.Directory](r)
		if err != nil {
			return err
		}
		l.add("directories", dir.ID, dir.Type, dir.Settings, dir.SealedSecret, dir.CreatedAt, dir.UpdatedAt)
	case storage.DumpGroup:
		g, err := decode[storage.Group](r)
		if err != nil {
			return err
		}
		l.add("groups", g.ID, storage.Fold(g.Name), raw)
	case storage.DumpUser:
		u, err := decode[storage.User](r)
		if err != nil {
			return err
		}
		if err := checkUser(u); err != nil {
			return fmt.Errorf("user %q: %w", u.ID, err)
		}
		l.add("users", u.ID, u.CreatedAt, u.LastLogin, u.Admin, u.Blocked, len(u.TOTPSecret) > 0, u.Source, searchText(u), raw)
		name, email := loginKey(u.Username), loginKey(u.Email)
		l.add("user_logins", name, u.ID, "username")
		if email != "" && email != name {
			l.add("user_logins", email, u.ID, "email")
		}
		seen := map[[2]string]bool{}
		for _, ident := range u.Identities {
			k := [2]string{ident.Connection, ident.UserID}
			if !seen[k] { // a user may list one identity twice (writeIdentitiesTx)
				seen[k] = true
				l.add("user_identities", ident.Connection, ident.UserID, u.ID)
			}
		}
		for _, g := range groupKeys(u.Groups) {
			l.add("user_groups", u.ID, g)
		}
	case storage.DumpReservedName:
		n, err := decode[storage.ReservedName](r)
		if err != nil {
			return err
		}
		l.add("reserved_names", n.Name, n.UserID, n.Until)
	case storage.DumpAvatar:
		a, err := decode[storage.Avatar](r)
		if err != nil {
			return err
		}
		l.add("avatars", a.UserID, a.ContentType, append([]byte{}, a.Data...), a.UpdatedAt)
	case storage.DumpClient:
		c, err := decode[storage.Client](r)
		if err != nil {
			return err
		}
		l.add("clients", c.ID, raw)
	case storage.DumpCredential:
		c, err := decode[storage.Credential](r)
		if err != nil {
			return err
		}
		if c.ID == "" || c.UserID == "" || c.Kind == "" {
			return invalid("credential %q: empty ID, user ID or kind", c.ID)
		}
		l.add("credentials", c.ID, c.UserID, c.Kind, orNullString(c.Hash), orNullBytes(c.WebAuthnID), c.ClientID, c.CreatedAt,
			orNull(c.ExpiresAt), orNull(c.ValidUntil), !c.ExpiryWarnedAt.IsZero(), raw)
	case storage.DumpSession:
		s, err := decode[storage.Session](r)
		if err != nil {
			return err
		}
		l.add("sessions", s.ID, s.UserID, s.CreatedAt, orNull(s.ExpiresAt), raw)
	case storage.DumpRefreshFamily:
		f, err := decode[storage.RefreshFamily](r)
		if err != nil {
			return err
		}
		live, ok := links[f.Live]
		if !ok {
			return invalid("refresh family %q: its live link is not in the dump", f.ID)
		}
		l.add("refresh_families", f.ID, f.UserID, f.ClientID, f.Live, orNullString(f.Prev), ns(live.End()))
	case storage.DumpRefreshToken:
		t, err := decode[storage.RefreshToken](r)
		if err != nil {
			return err
		}
		if !families[t.FamilyID] {
			return invalid("refresh token %s: family %q is not in the dump", t.ID, t.FamilyID)
		}
		var grace *int64
		if len(t.SealedValue) > 0 {
			grace = ns(t.GraceUntil)
		}
		l.add("refresh_tokens", t.Hash, t.ID, t.FamilyID, !t.RotatedAt.IsZero(), grace, raw)
	case storage.DumpAccessToken:
		a, err := decode[storage.AccessToken](r)
		if err != nil {
			return err
		}
		l.add("access_tokens", a.ID, a.ClientID, a.UserID, a.FamilyID, ns(a.ExpiresAt), raw)
	case storage.DumpGrant:
		g, err := decode[storage.Grant](r)
		if err != nil {
			return err
		}
		l.add("grants", g.UserID, g.ClientID, g.Scopes, g.CreatedAt, g.UpdatedAt, orNull(g.LastUsedAt))
	case storage.DumpOneTimeToken:
		t, err := decode[storage.OneTimeToken](r)
		if err != nil {
			return err
		}
		l.add("one_time_tokens", t.Hash, t.Purpose, t.UserID, t.OnePerUser, orNull(t.ExpiresAt), raw)
	case storage.DumpLoginAttempt:
		a, err := decode[storage.LoginAttempt](r)
		if err != nil {
			return err
		}
		l.add("login_attempts", a.UserID, a.Time, a.ID, raw)
	case storage.DumpThrottle:
		t, err := decode[storage.Throttle](r)
		if err != nil {
			return err
		}
		l.add("throttles", []byte(t.Key), orNull(t.ExpiresAt), raw)
	case storage.DumpAuditEvent:
		e, err := decode[storage.AuditEvent](r)
		if err != nil {
			return err
		}
		l.add("audit_events", e.Time.UnixNano(), e.ID, e.Type, e.ActorID, e.TargetUserID, raw)
	case storage.DumpOutboxMessage:
		m, err := decode[storage.OutboxMessage](r)
		if err != nil {
			return err
		}
		l.add("outbox", m.ID, m.Kind, m.State, outboxDue(m), orNull(m.DeliveredAt), raw)
	case storage.DumpWebhook:
		w, err := decode[storage.Webhook](r)
		if err != nil {
			return err
		}
		l.add("webhooks", w.ID, w.OwnerUserID, w.CreatedAt, raw)
	case storage.DumpWebhookDelivery:
		del, err := decode[storage.DumpedDelivery](r)
		if err != nil {
			return err
		}
		if !hooks[del.WebhookID] {
			return invalid("delivery of webhook %q, which is not in the dump", del.WebhookID)
		}
		*deliveries = append(*deliveries, del)
	default:
		return invalid("unknown kind %q", r.Kind)
	}
	return nil
}
