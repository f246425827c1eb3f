package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// Backup and Restore: a logical copy of every table, written by Keyport
// itself so that storage.Store's Backup means the same on both backends
// (one consistent copy, taken online, through the running server) and
// needs no pg_dump of the server's major version on the machine. pg_dump
// remains the tool for whole-cluster backups and point-in-time recovery;
// this is the copy of Keyport's records.
//
// The format is text, one line each for the header, every table's name
// and columns, and the end, with each table's rows between in PostgreSQL's
// COPY text format (one row a line, tab-separated, \N for NULL, backslash
// escapes), closed by a line "\." as in psql scripts:
//
//	keyport-postgres-backup 1 schema 1
//	table users id created_at last_login admin blocked totp source search record
//	u1	2026-03-01 12:00:00+00	…
//	\.
//	table user_logins name user_id field
//	…
//	\.
//	end 27
//
// 1 after the magic word is the format, schema the database's schema
// version (schema_version), end the number of tables: a copy cut short
// has no end line and is refused. Tables come parents first (in the order
// of their foreign keys, else by name), so loading them in file order
// satisfies every constraint. schema_version itself is not copied: the
// header carries it, and Restore loads only into a database migrated to
// that same version.

// backupMagic and backupFormat open every backup.
const (
	backupMagic  = "keyport-postgres-backup"
	backupFormat = 1
)

// backupTable is a table with the columns copied, in their order.
type backupTable struct {
	name    string
	columns []string
}

func (t backupTable) copySQL(direction string) string {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	return fmt.Sprintf("COPY %s (%s) %s", pgx.Identifier{t.name}.Sanitize(), strings.Join(cols, ", "), direction)
}

// Backup writes every table in one REPEATABLE READ, READ ONLY
// transaction, so the copy is one snapshot of the database however long
// it takes, and writers are not held up meanwhile.
func (d *DB) Backup(ctx context.Context, w io.Writer) error {
	tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("backup: begin: %w", err)
	}
	defer tx.Rollback(ctx) // read only: nothing to undo
	var version int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&version); err != nil {
		return fmt.Errorf("backup: read the schema version: %w", err)
	}
	tables, err := backupTables(ctx, tx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "%s %d schema %d\n", backupMagic, backupFormat, version)
	for _, t := range tables {
		fmt.Fprintf(bw, "table %s %s\n", t.name, strings.Join(t.columns, " "))
		if _, err := tx.Conn().PgConn().CopyTo(ctx, bw, t.copySQL("TO STDOUT")); err != nil {
			return fmt.Errorf("backup: copy table %s: %w", t.name, err)
		}
		bw.WriteString("\\.\n")
	}
	fmt.Fprintf(bw, "end %d\n", len(tables))
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("backup: write: %w", err)
	}
	return nil
}

// backupTables lists the tables of the current schema but schema_version,
// each with its columns (generated ones left out: PostgreSQL makes them),
// parents before the tables whose foreign keys point at them, else by name.
func backupTables(ctx context.Context, q querier) ([]backupTable, error) {
	rows, err := q.Query(ctx, `SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' AND c.relname <> 'schema_version'
			AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		GROUP BY c.relname ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []backupTable
	var t backupTable
	if _, err := pgx.ForEachRow(rows, []any{&t.name, &t.columns}, func() error {
		tables = append(tables, t)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT c.relname, p.relname FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
		WHERE k.contype = 'f' AND k.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	parents := map[string][]string{}
	var child, parent string
	if _, err := pgx.ForEachRow(rows, []any{&child, &parent}, func() error {
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	// Take, by name, the first table whose parents are all taken.
	var ordered []backupTable
	taken := map[string]bool{}
	for len(tables) > 0 {
		i := slices.IndexFunc(tables, func(t backupTable) bool {
			return !slices.ContainsFunc(parents[t.name], func(p string) bool { return !taken[p] })
		})
		if i < 0 {
			return nil, fmt.Errorf("the foreign keys of tables %v form a cycle", tables)
		}
		taken[tables[i].name] = true
		ordered = append(ordered, tables[i])
		tables = slices.Delete(tables, i, i+1)
	}
	return ordered, nil
}

// Restore loads a copy that Backup wrote into d, which must be empty (no
// rows in any table) and at the copy's schema version: open the new
// database with the Keyport that wrote the copy, restore, then upgrade.
// It runs in one transaction: a copy that is cut short, damaged or of
// another schema leaves d as it was.
func (d *DB) Restore(ctx context.Context, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var format, schema int
	header, err := readBackupLine(br)
	if err == nil {
		_, err = fmt.Sscanf(header, backupMagic+" %d schema %d", &format, &schema)
	}
	if err != nil {
		return fmt.Errorf("restore: not a keyport PostgreSQL backup (the first line is %.60q): %w", header, storage.ErrInvalid)
	}
	if format != backupFormat {
		return fmt.Errorf("restore: backup format %d, this keyport reads %d: %w", format, backupFormat, storage.ErrInvalid)
	}
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		var version int
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&version); err != nil {
			return fmt.Errorf("read the schema version: %w", err)
		}
		if version != schema {
			return fmt.Errorf("the backup is of schema version %d and the database of %d: restore into a database opened by the keyport that wrote the backup, then upgrade: %w", schema, version, storage.ErrInvalid)
		}
		tables, err := backupTables(ctx, tx)
		if err != nil {
			return err
		}
		known := map[string]backupTable{}
		for _, t := range tables {
			var rows bool
			if err := tx.QueryRow(ctx, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s)", pgx.Identifier{t.name}.Sanitize())).Scan(&rows); err != nil {
				return fmt.Errorf("look into table %s: %w", t.name, err)
			}
			if rows {
				return fmt.Errorf("the database is not empty (table %s has rows): restore only into a new database: %w", t.name, storage.ErrConflict)
			}
			known[t.name] = t
		}
		loaded := map[string]bool{}
		for {
			line, err := readBackupLine(br)
			if err != nil {
				return fmt.Errorf("the backup ends before its end line: %w", err)
			}
			if n, ok := strings.CutPrefix(line, "end "); ok {
				if want, err := strconv.Atoi(n); err != nil || want != len(loaded) {
					return fmt.Errorf("the backup's end line says %q tables, it holds %d: %w", n, len(loaded), storage.ErrInvalid)
				}
				if _, err := br.Peek(1); err != io.EOF {
					return fmt.Errorf("the backup goes on after its end line: %w", storage.ErrInvalid)
				}
				return notifyTx(ctx, tx, storage.ChangeClients)
			}
			fields := strings.Fields(line)
			if len(fields) < 2 || fields[0] != "table" {
				return fmt.Errorf("expected a table line, got %.60q: %w", line, storage.ErrInvalid)
			}
			t := backupTable{name: fields[1], columns: fields[2:]}
			if _, ok := known[t.name]; !ok || loaded[t.name] {
				return fmt.Errorf("table %q is not in this database's schema, or comes twice: %w", t.name, storage.ErrInvalid)
			}
			loaded[t.name] = true
			sec := &copySection{br: br, lineStart: true}
			if _, err := tx.Conn().PgConn().CopyFrom(ctx, sec, t.copySQL("FROM STDIN")); err != nil {
				if sec.err != nil {
					err = sec.err // the backup's fault, which PostgreSQL was told as text
				}
				return fmt.Errorf("load table %s: %w", t.name, err)
			}
			if !sec.done {
				return fmt.Errorf("load table %s: its rows do not end with \\.: %w", t.name, storage.ErrInvalid)
			}
			if err := resetSequencesTx(ctx, tx, t.name); err != nil {
				return err
			}
		}
	})
	d.clients.drop()
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// resetSequencesTx moves the sequences behind table's identity (and
// serial) columns past the largest value loaded, so the next row inserted
// does not take a restored one's.
func resetSequencesTx(ctx context.Context, tx pgx.Tx, table string) error {
	rows, err := tx.Query(ctx, `SELECT a.attname::text, s FROM pg_attribute a,
			pg_get_serial_sequence(quote_ident($1), a.attname) s
		WHERE a.attrelid = quote_ident($1)::regclass AND a.attnum > 0 AND NOT a.attisdropped AND s IS NOT NULL`, table)
	if err != nil {
		return fmt.Errorf("find the sequences of %s: %w", table, err)
	}
	type seq struct{ column, name string }
	var seqs []seq
	var s seq
	if _, err := pgx.ForEachRow(rows, []any{&s.column, &s.name}, func() error {
		seqs = append(seqs, s)
		return nil
	}); err != nil {
		return fmt.Errorf("find the sequences of %s: %w", table, err)
	}
	for _, s := range seqs {
		sql := fmt.Sprintf("SELECT setval($1, coalesce(max(%s), 0) + 1, false) FROM %s", pgx.Identifier{s.column}.Sanitize(), pgx.Identifier{table}.Sanitize())
		if _, err := tx.Exec(ctx, sql, s.name); err != nil {
			return fmt.Errorf("move sequence %s: %w", s.name, err)
		}
	}
	return nil
}

// readBackupLine reads one line (header, table or end) without its newline.
func readBackupLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return strings.TrimSuffix(line, "\n"), err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// copySection reads one table's rows (COPY text format) and ends, with
// io.EOF, at the line "\." that closes them. A row never is that line:
// COPY writes a backslash in a value as two.
type copySection struct {
	br        *bufio.Reader
	rest      []byte // of the chunk read last, not yet returned
	lineStart bool   // the next byte of br starts a line
	done      bool   // the closing line was read
	err       error  // why reading br failed
}

func (s *copySection) Read(p []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if len(s.rest) == 0 {
		if s.lineStart {
			if b, _ := s.br.Peek(3); string(b) == "\\.\n" {
				s.br.Discard(3) // peeked: cannot fail
				s.done = true
				return 0, io.EOF
			}
		}
		chunk, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			s.lineStart = true
		case errors.Is(err, bufio.ErrBufferFull):
			s.lineStart = false // a long row goes on
		case errors.Is(err, io.EOF):
			s.err = fmt.Errorf("the rows end without \\.: %w", io.ErrUnexpectedEOF)
			return 0, s.err
		default:
			s.err = err
			return 0, err
		}
		s.rest = chunk // valid until br is read again, which waits for it
	}
	n := copy(p, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}
