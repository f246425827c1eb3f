// Package bolt stores Keyport's records in one bbolt file.
//
// Layout: one bucket per record kind holding JSON values, plus index buckets
// kept in the same write transaction as the records they point to. Every key
// that is made of several parts joins them with a NUL byte, so a prefix that
// ends in NUL selects exactly one owner (a user, a family, ...).
//
// Expiring records also get an entry in the "expiry" bucket, keyed by kind,
// big-endian expiry time and record key, so Sweep finds what is due by
// walking the front of that bucket instead of reading every record.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/keyport/keyport/storage"
)

// ErrLocked is returned by Open (wrapped) when another process holds the
// database file.
var ErrLocked = errors.New("database is locked by another process")

// ErrSchemaTooNew is returned by Open (wrapped) when the file was written by a
// newer Keyport whose schema this one does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this version of keyport understands")

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Now is the clock used for expiry. Default time.Now.
	Now func() time.Time
	// Timeout is how long Open waits for the file lock. Default 1s.
	Timeout time.Duration
	// MaxBatchDelay bounds how long a commit waits for concurrent writes to
	// join it; it waits only while other goroutines are ready to run, so a
	// lone writer commits at once (see groupCommit). Default 2ms; negative
	// turns the wait off.
	MaxBatchDelay time.Duration
	// Logger receives migration, sweep and token-reuse messages. Default: discard.
	Logger *slog.Logger
	// SkipCheck skips the consistency check of the file at open (see
	// checkAtOpen), for files too large to check at every start.
	SkipCheck bool
	// CheckTimeout is how long Open waits for that check before it returns
	// and lets the check finish in the background. Default 30s.
	CheckTimeout time.Duration
	// MaxPendingSignIns is the Total of the storage.PendingLimits the
	// caller will pass. The flow file stays within FlowFileBound of it; a
	// file found at open far above that (left by a flood before the limits
	// held: bbolt never gives space back) is recreated empty. 0: no check.
	MaxPendingSignIns int
}

// pendingBytesEach is what one pending sign-in may take of the flow file:
// twice storage.MaxAuthRequestBytes, for the B+tree's pages, the codes, the
// indexes and pages freed but not yet reused.
const pendingBytesEach = 2 * storage.MaxAuthRequestBytes

// FlowFileBound is the size the flow file stays below with at most
// maxPending pending sign-ins (config.toml documents it).
func FlowFileBound(maxPending int) int64 { return int64(maxPending) * pendingBytesEach }

// oversizedFlowFile is the size from which a flow file is recreated at
// open: twice its bound, and never less than minOversizedFlowFile, so the
// redeemed codes of a busy site with a small limit never count as a flood.
func oversizedFlowFile(maxPending int) int64 {
	return max(2*FlowFileBound(maxPending), minOversizedFlowFile)
}

// flowAllocSize is how much the flow file grows by at a time, once past it.
const flowAllocSize = 1 << 20

// minOversizedFlowFile is a variable so tests can make it small.
var minOversizedFlowFile int64 = 64 << 20

// DB is a Keyport store in one bbolt file. It is safe for concurrent use.
type DB struct {
	db      *guardedDB
	commits *groupCommit
	// memos keep decoded clients, users and refresh tokens (memo.go).
	memos memos
	path  string
	// flow holds authorization requests and codes: records that live for
	// minutes and sit on the sign-in path, where every durable commit costs
	// a disk sync. It is a second bbolt file written without syncs: a
	// restart keeps it (the OS has the pages), a machine crash may lose or
	// damage it, and then it is recreated empty, which only makes people who
	// were signing in at that moment start again.
	flow        *guardedDB
	flowCommits *groupCommit
	flowPath    string
	now         func() time.Time
	log         *slog.Logger
	// stopCheck ends a consistency check still running at Close.
	stopCheck context.CancelFunc
}

var _ storage.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and brings its schema
// up to date.
func Open(path string, opts Options) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	switch {
	case opts.MaxBatchDelay == 0:
		opts.MaxBatchDelay = 2 * time.Millisecond
	case opts.MaxBatchDelay < 0:
		opts.MaxBatchDelay = 0
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if opts.CheckTimeout <= 0 {
		opts.CheckTimeout = 30 * time.Second
	}
	bdb, err := openBolt(path, &bbolt.Options{Timeout: opts.Timeout, InitialMmapSize: initialMapping})
	if err != nil {
		return nil, err
	}
	g := newGuarded(bdb, path, opts.Logger)
	g.appendBuckets = appendOnlyBuckets
	d := &DB{db: g, commits: &groupCommit{db: g, maxGather: opts.MaxBatchDelay}, memos: newMemos(), path: path, now: opts.Now, log: opts.Logger}
	if !opts.SkipCheck {
		if err := d.checkAtOpen(opts.CheckTimeout); err != nil {
			_ = d.closeMain()
			return nil, err
		}
	}
	if err := d.migrate(); err != nil {
		_ = d.closeMain()
		return nil, err
	}
	if err := d.openFlows(FlowPath(path), opts.Timeout, opts.MaxPendingSignIns); err != nil {
		_ = d.closeMain()
		return nil, err
	}
	d.db.opening.Store(false)
	d.flow.opening.Store(false)
	return d, nil
}

// initialMapping is how much address space bbolt maps for a file from the
// start (only address space: the kernel reads the pages a transaction
// touches). A write that outgrows the mapping remaps the file, and a
// remap waits for every read transaction to end: with bbolt's default (the
// file's size, doubled) a check at open that goes on in the background, or
// a backup streamed to a slow client, would hold writes up each time the
// file grew. With 1 GiB mapped, that happens only past 1 GiB, where the
// check's time and the backup's write deadline bound the wait. Where
// address space is scarce (32-bit), bbolt's default stays. With the file
// inside its mapping, bbolt grows it by AllocSize (16 MiB) at a time from
// the start: a new database is a 16 MiB sparse file, whose disk use is
// what has been written. Not for the
// flow file: nothing reads it for long, and past its mapping bbolt grows a
// file by a whole AllocSize at a time, which would undo flowAllocSize.
const initialMapping = (1 << 30) * (strconv.IntSize / 64)

// openBolt opens a bbolt file, turning a lock held elsewhere into
// ErrLocked, and a file bbolt cannot read, or a panic while it loads one,
// into a DamagedError.
//
// bbolt reads the meta pages and the freelist page as soon as it has the
// file, and trusts them: a damaged freelist count can make it allocate
// more memory than there is, which ends the process with no panic to
// recover. So the file is opened here: locked as bbolt locks it, then its
// header checked (checkHeader), and only then handed to bbolt, whose own
// lock on the same handle is then already held.
func openBolt(path string, o *bbolt.Options) (db *bbolt.DB, err error) {
	// Keep the file bbolt opens: after a panic, closing it is what
	// releases the lock, so the next open in this process does not find
	// the file in use.
	var file *os.File
	o.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, mode)
		if err != nil {
			return nil, err
		}
		if err := lockAndCheckHeader(f, path, flag&(os.O_WRONLY|os.O_RDWR) != 0, o.Timeout); err != nil {
			_ = f.Close()
			return nil, err
		}
		file = f
		return f, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				unlock(file)
				_ = file.Close()
			}
			db, err = nil, &DamagedError{Path: path, Reason: "open: " + oneLine(fmt.Sprint(p))}
		}
	}()
	db, err = bbolt.Open(path, 0o600, o)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, &lockedError{path: path}
	case errors.Is(err, ErrDamaged):
		return nil, err
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, &DamagedError{Path: path, Reason: "open: " + err.Error()}
	}
	return nil, fmt.Errorf("open database %s: %w", path, err)
}

// lockAndCheckHeader takes bbolt's lock on f (exclusive to write, shared
// to read) and checks the header of a file that is not new.
func lockAndCheckHeader(f *os.File, path string, exclusive bool, timeout time.Duration) error {
	if err := lockFile(f, exclusive, timeout); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err // bbolt writes a new file's header
	}
	reason, err := checkHeader(f)
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	if reason != "" {
		return &DamagedError{Path: path, Reason: reason}
	}
	return nil
}

// checkStarting, when set (by tests), runs once the check at open has
// taken its snapshot, before it reads it.
var checkStarting func()

// checkAtOpen checks the file (checkSnapshot) before anything is written
// to it. Open waits for the check at most timeout: a file too large to
// check within it is used at once while the check goes on in its read
// transaction, and damage the check finds later stops writes and shows in
// Health, as a damaged page met by a request does. The timeout runs from
// when the check holds its snapshot: until then nothing may write.
func (d *DB) checkAtOpen(timeout time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	d.stopCheck = cancel
	start := time.Now()
	done := make(chan error, 1)
	snapped := make(chan struct{})
	go func() {
		done <- d.db.View(func(tx *bbolt.Tx) error {
			reason, err := checkSnapshot(ctx, tx, d.path, func() {
				close(snapped)
				if checkStarting != nil {
					checkStarting()
				}
			})
			if reason != "" {
				return &DamagedError{Path: d.path, Reason: reason}
			}
			return err
		})
	}()
	select {
	case <-snapped:
	case err := <-done: // it never began
		return err
	}
	select {
	case err := <-done:
		d.log.Debug("checked database", "path", d.path, "took", time.Since(start))
		return err
	case <-time.After(timeout):
	}
	d.log.Warn("the database check takes longer than database.check_timeout; keyport starts while it finishes", "path", d.path, "timeout", timeout)
	go func() {
		err := <-done
		var de *DamagedError
		switch {
		case errors.As(err, &de):
			if err, first := d.db.setDamaged(de.Reason); first {
				d.db.logDamage(err)
			}
		case err != nil && ctx.Err() == nil:
			d.log.Error("database check failed", "path", d.path, "err", err)
		case err == nil:
			d.log.Info("checked database", "path", d.path, "took", time.Since(start))
		}
	}()
	return nil
}

// FlowPath names the flow file beside the main one: keyport.db → keyport-flows.db.
func FlowPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + "-flows" + filepath.Ext(path)
}

// openFlows opens (or, when it is damaged or far too large, recreates)
// the flow file.
func (d *DB) openFlows(path string, timeout time.Duration, maxPending int) error {
	d.flowPath = path
	if fi, err := os.Stat(path); err == nil && maxPending > 0 && fi.Size() > oversizedFlowFile(maxPending) {
		// Its contents are minutes of pending sign-ins, and bbolt never
		// returns a file's free pages: start afresh.
		d.log.Warn("flow database far larger than its bound (flooded before the pending sign-in limits held?); recreating it (sign-ins in progress must start again)",
			"path", path, "size_mib", fi.Size()>>20, "bound_mib", FlowFileBound(maxPending)>>20)
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove oversized flow database %s: %w", path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		g, err := d.openFlowFile(path, timeout)
		if err == nil {
			d.flow, d.flowCommits = g, &groupCommit{db: g}
			return nil
		}
		if errors.Is(err, ErrLocked) {
			return err
		}
		if attempt > 0 {
			return fmt.Errorf("open flow database %s: %w", path, err)
		}
		// Its contents are minutes of pending sign-ins: start afresh.
		d.log.Warn("flow database damaged; recreating it (sign-ins in progress must start again)", "path", path, "err", err)
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("remove damaged flow database %s: %w", path, rerr)
		}
	}
}

// openFlowFile checks the flow file, when there is one, and opens it. The
// check comes first, on a read-only handle: the file is written without a
// freelist (NoFreelistSync), and bbolt rebuilds one when it opens such a
// file for writing by walking every page in a goroutine of its own, where a
// damaged page would crash the process.
func (d *DB) openFlowFile(path string, timeout time.Duration) (*guardedDB, error) {
	if _, err := os.Stat(path); err == nil {
		reason, err := checkFile(context.Background(), path, timeout)
		if err != nil {
			return nil, err
		}
		if reason != "" {
			return nil, &DamagedError{Path: path, Reason: reason, Scratch: true}
		}
	}
	fdb, err := openBolt(path, &bbolt.Options{Timeout: timeout, NoSync: true, NoFreelistSync: true})
	if err != nil {
		return nil, err
	}
	// bbolt grows a file past 16 MiB by 16 MiB at a time; the flow file
	// grows by a little at a time instead, so its size follows what it
	// holds (FlowFileBound) rather than half of it going to preallocation
	// at the default limits of a small site.
	fdb.AllocSize = flowAllocSize
	g := newGuarded(fdb, path, d.log)
	g.scratch = true
	err = g.Update(func(tx *bbolt.Tx) error {
		for _, name := range flowBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if err := rebuildDeviceOrigins(tx); err != nil {
			return err
		}
		return rebuildPendingIndexes(tx)
	})
	if err != nil {
		_ = fdb.Close()
		return nil, err
	}
	return g, nil
}

// Close releases the files. Pending batched writes finish first.
func (d *DB) Close() error {
	var ferr error
	if d.flow != nil {
		// Sync once at a clean shutdown, so even a crash of the machine
		// right after it loses nothing.
		_ = d.flow.Sync()
		if err := d.flow.Close(); err != nil {
			ferr = fmt.Errorf("close flow database %s: %w", d.flowPath, err)
		}
	}
	if err := d.closeMain(); err != nil {
		return err
	}
	return ferr
}

// closeMain closes the main file, ending a check still running first (the
// part that can be ended: bbolt's own check holds Close until it is done).
func (d *DB) closeMain() error {
	if d.stopCheck != nil {
		d.stopCheck()
	}
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", d.path, err)
	}
	return nil
}

// Backup writes a consistent copy of the whole file to w. Writers are not
// blocked while it runs.
func (d *DB) Backup(ctx context.Context, w io.Writer) error {
	err := d.db.View(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if cerr := ctx.Err(); err != nil && cerr != nil {
		err = cerr // bbolt does not wrap the writer's error
	}
	if err != nil {
		return fmt.Errorf("backup database %s: %w", d.path, err)
	}
	return nil
}

type lockedError struct{ path string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("database %s is in use by another process (is keyport serve running?)", e.path)
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// ctxWriter stops a long backup when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// Bucket names.
var (
	bMeta            = []byte("meta")
	bUsers           = []byte("users")
	bUsersByUsername = []byte("users_by_username") // lower(username) → user ID
	bUsersByEmail    = []byte("users_by_email")    // lower(email) → user ID
	bClients         = []byte("clients")
	bAuthRequests    = []byte("auth_requests")
	bCodes           = []byte("codes")            // code hash → auth request ID
	bCodesByRequest  = []byte("codes_by_request") // auth request ID → code hash
	bRedeemedCodes   = []byte("redeemed_codes")   // code hash → redeemedCode, to recognise a replay
	bAccessTokens    = []byte("access_tokens")
	bRefreshTokens   = []byte("refresh_tokens") // hash → RefreshToken (live links and rotated tombstones)
	bRefreshByID     = []byte("refresh_by_id")  // refresh token ID → hash
	bFamilies        = []byte("families")       // family ID → family
	bFamilyMembers   = []byte("family_members") // fid NUL token ID NUL kind (r or a) → "" (familyMemberKey)
	bUserTokens      = []byte("user_tokens")    // uid NUL cid NUL f NUL fid, uid NUL cid NUL a NUL access ID → ""
	bSessions        = []byte("sessions")
	bUserSessions    = []byte("user_sessions") // uid NUL session ID → ""
	bGrants          = []byte("grants")        // uid NUL cid → Grant
	bSigningKeys     = []byte("signing_keys")
	bSettings        = []byte("settings")        // name → raw bytes
	bOneTimeTokens   = []byte("one_time_tokens") // hash → OneTimeToken
	bLoginAttempts   = []byte("login_attempts")  // uid NUL nanos(8) id → LoginAttempt
	bExpiry          = []byte("expiry")          // kind(1) nanos(8) key → ""
	bCredentials     = []byte("credentials")     // uid NUL credential ID → Credential
	// credential secret hash → uid NUL credential ID
	bCredentialsByHash = []byte("credentials_by_hash")
	// hex(WebAuthn credential ID) → uid NUL credential ID
	bCredentialsByWebAuthn = []byte("credentials_by_webauthn")
	bAvatars               = []byte("avatars") // uid → Avatar
	// connection NUL external user ID → user ID
	bUsersByIdentity = []byte("users_by_identity")
	bDirectories     = []byte("directories")     // directory ID → Directory
	bThrottles       = []byte("throttles")       // throttle key → Throttle
	kSchemaVersion   = []byte("schema_version")  // in bMeta, decimal
	bAudit           = []byte("audit")           // nanos(8) event ID → AuditEvent
	bAuditByActor    = []byte("audit_by_actor")  // actor ID NUL nanos(8) event ID → ""
	bAuditByTarget   = []byte("audit_by_target") // target user ID NUL nanos(8) event ID → ""
	// The user search index (usersearch.go): nanos(CreatedAt) or
	// nanos(LastLogin), then the user ID → the user's summary.
	bUserSearchCreated = []byte("user_search_created")
	bUserSearchSignIn  = []byte("user_search_signin")
	bUsersByGroup      = []byte("users_by_group") // Fold(group) NUL user ID → nanos(CreatedAt)
	bAdmins            = []byte("users_admins")   // user ID → "", for each admin who is not blocked
	bGroups            = []byte("groups")         // group ID → Group
	bGroupsByName      = []byte("groups_by_name") // Fold(name) → group ID
	bReservedNames     = []byte("reserved_names") // lower(username or email) → reservation
	// The outbox (outbox.go): message ID → OutboxMessage, and its indexes.
	bOutbox        = []byte("outbox")
	bOutboxDue     = []byte("outbox_due")      // nanos(due) message ID → "", pending messages only
	bOutboxByState = []byte("outbox_by_state") // state NUL message ID → ""
	emptyValue     = []byte{}

	// Webhooks (webhooks.go): ID → Webhook; owner NUL ID → ""; ID NUL seq(8) → WebhookDelivery.
	bWebhooks, bWebhooksByOwner, bWebhookDeliveries = []byte("webhooks"), []byte("webhooks_by_owner"), []byte("webhook_deliveries")

	// cid NUL kind NUL key → "": an app's tokens, grants and credentials (clientrecords.go)
	bClientRecords = []byte("client_records")

	// uid NUL purpose → hash of the user's live OnePerUser one-time token
	bOneTimeByUser = []byte("one_time_by_user")

	// Device authorizations (device.go): device code hash → record; user code → device code hash.
	bDeviceAuths, bDeviceByUserCode = []byte("device_authorizations"), []byte("device_by_user_code")
	// origin NUL nanos(ExpiresAt) device code hash → "", for requests with an Origin.
	bDeviceByOrigin = []byte("device_by_origin")

	// flowBuckets live in the flow file (see openFlows), with their own expiry bucket.
	// The pending limits' indexes (pendingIndexes) are rebuilt at open.
	flowBuckets = [][]byte{bAuthRequests, bCodes, bCodesByRequest, bRedeemedCodes, bExpiry, bDeviceAuths, bDeviceByUserCode, bDeviceByOrigin}

	// allDataBuckets must all exist once migrations have run.
	allDataBuckets = [][]byte{bUsers, bUsersByUsername, bUsersByEmail, bClients, bAccessTokens, bRefreshTokens, bRefreshByID, bFamilies, bFamilyMembers, bUserTokens, bSessions, bUserSessions, bGrants, bSigningKeys, bSettings, bOneTimeTokens, bLoginAttempts, bExpiry, bCredentials, bCredentialsByHash, bCredentialsByWebAuthn, bAvatars, bUsersByIdentity, bDirectories, bThrottles, bAudit, bAuditByActor, bAuditByTarget,
		bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins, bGroups, bGroupsByName, bReservedNames, bClientRecords,
		bOutbox, bOutboxDue, bOutboxByState,
		bWebhooks, bWebhooksByOwner, bWebhookDeliveries, bOneTimeByUser}
)

// appendOnlyBuckets are the main file's buckets whose keys grow with time,
// so new records go at their end: access tokens and refresh links (keys
// led by ordered IDs or a time prefix), refresh link IDs, expiry entries
// (kind, then instant), audit events (instant first) and the user
// search's two orders (creation and last sign-in; new users and sign-ins
// are the newest). Their pages are
// filled to appendFill before they split (guardedDB). The refresh
// benchmark's rotations write about a tenth fewer pages so
// (BenchmarkRotationPages), and the buckets take about half the space.
var appendOnlyBuckets = [][]byte{bAccessTokens, bRefreshTokens, bRefreshByID, bExpiry, bAudit, bUserSearchCreated, bUserSearchSignIn}

// sweepChunk bounds the deletions of one Sweep transaction (a variable so
// tests can make it small).
var sweepChunk = 1000

const (
	loginAttemptsCap = 100 // kept per user
	loginAttemptsAge = 90 * 24 * time.Hour
)

// Kinds in the expiry bucket.
const (
	expAuthRequest  byte = 'a'
	expAccessToken  byte = 't'
	expFamily       byte = 'f'
	expSession      byte = 's'
	expOneTimeToken byte = 'o'
	expRedeemedCode byte = 'c'
	expLoginAttempt byte = 'l' // keyed by attempt time; swept after loginAttemptsAge
	expCredential   byte = 'k'
	expThrottle     byte = 'r'
	expRefreshGrace byte = 'g' // keyed by refresh token hash; drops its sealed value
	expReservedName byte = 'n' // keyed by the reserved name
	expOutbox       byte = 'm' // keyed by message ID, at DeliveredAt + storage.OutboxRetention
	expDeviceAuth   byte = 'd' // in the flow file, keyed by device code hash, at ExpiresAt + storage.DeviceAuthorizationKept
)

// Schema.

// migrations[v] upgrades a database from schema version v to v+1. Append
// only; never edit a released step. The schema version of this code is
// len(migrations).
var migrations = []func(tx *bbolt.Tx) error{
	0: func(tx *bbolt.Tx) error { // a new file
		for _, name := range [][]byte{bUsers, bUsersByUsername, bUsersByEmail, bClients, bAccessTokens, bRefreshTokens, bRefreshByID, bFamilies, bFamilyMembers, bUserTokens, bSessions, bUserSessions, bGrants, bSigningKeys, bSettings, bOneTimeTokens, bLoginAttempts, bExpiry} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	1: func(tx *bbolt.Tx) error { // the profile portal: credentials and avatars
		for _, name := range [][]byte{bCredentials, bCredentialsByHash, bCredentialsByWebAuthn, bAvatars} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	2: func(tx *bbolt.Tx) error { // directories: users linked to external accounts
		_, err := tx.CreateBucketIfNotExists(bUsersByIdentity)
		return err
	},
	3: func(tx *bbolt.Tx) error { // directories added on the admin page
		_, err := tx.CreateBucketIfNotExists(bDirectories)
		return err
	},
	4: func(tx *bbolt.Tx) error { // durable sign-in throttling
		_, err := tx.CreateBucketIfNotExists(bThrottles)
		return err
	},
	5: func(tx *bbolt.Tx) error { // the audit log
		for _, name := range [][]byte{bAudit, bAuditByActor, bAuditByTarget} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	6: func(tx *bbolt.Tx) error { // the admin console: user search, local groups, reserved names
		for _, name := range [][]byte{bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins, bGroups, bGroupsByName, bReservedNames} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return buildUserIndexes(tx)
	},
	7: func(tx *bbolt.Tx) error { // an app's records, to delete them with it
		if _, err := tx.CreateBucketIfNotExists(bClientRecords); err != nil {
			return fmt.Errorf("create bucket %s: %w", bClientRecords, err)
		}
		return indexClientRecordsTx(tx)
	},
	8: func(tx *bbolt.Tx) error { // the durable outbox
		for _, name := range [][]byte{bOutbox, bOutboxDue, bOutboxByState} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	9: func(tx *bbolt.Tx) error { // webhooks and their delivery logs
		for _, name := range [][]byte{bWebhooks, bWebhooksByOwner, bWebhookDeliveries} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	10: func(tx *bbolt.Tx) error { // one live link per user for some purposes
		if _, err := tx.CreateBucketIfNotExists(bOneTimeByUser); err != nil {
			return fmt.Errorf("create bucket %s: %w", bOneTimeByUser, err)
		}
		return nil
	},
	11: reorderFamilyMembers, // a family's index entries in issue order
	// A family's newest members may be pending on its record (family.
	// Pending), where a release before this one would not look: nothing
	// to change in the file, but such a release must not open it again.
	12: func(*bbolt.Tx) error { return nil },
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

func readSchemaVersion(tx *bbolt.Tx) (int, error) {
	meta := tx.Bucket(bMeta)
	if meta == nil {
		return 0, nil
	}
	raw := meta.Get(kSchemaVersion)
	if raw == nil {
		return 0, nil
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad schema version %q", raw)
	}
	return v, nil
}

func (d *DB) migrate() error {
	var version int
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		version, err = readSchemaVersion(tx)
		return err
	})
	if err != nil {
		var de *DamagedError
		if errors.As(err, &de) {
			return err
		}
		return &DamagedError{Path: d.path, Reason: err.Error()}
	}
	if version > SchemaVersion() {
		return fmt.Errorf("database %s has schema version %d but this keyport understands up to %d; upgrade keyport: %w",
			d.path, version, SchemaVersion(), ErrSchemaTooNew)
	}
	if version < SchemaVersion() {
		err = d.db.Update(func(tx *bbolt.Tx) error {
			v, err := readSchemaVersion(tx) // unchanged: we hold the file lock
			if err != nil {
				return err
			}
			meta, err := tx.CreateBucketIfNotExists(bMeta)
			if err != nil {
				return err
			}
			from := v
			for ; v < SchemaVersion(); v++ {
				if err := migrations[v](tx); err != nil {
					return fmt.Errorf("migrate from schema %d to %d: %w", v, v+1, err)
				}
			}
			// One line either way: a new file runs every step.
			if from == 0 {
				d.log.Info("created database", "path", d.path, "schema", v)
			} else {
				d.log.Info("migrated database", "path", d.path, "from", from, "to", v)
			}
			return meta.Put(kSchemaVersion, []byte(strconv.Itoa(v)))
		})
		if err != nil {
			return fmt.Errorf("open database %s: %w", d.path, err)
		}
	}
	return d.db.View(func(tx *bbolt.Tx) error {
		for _, name := range allDataBuckets {
			if tx.Bucket(name) == nil {
				return &DamagedError{Path: d.path, Reason: fmt.Sprintf("bucket %s is missing", name)}
			}
		}
		return nil
	})
}

// Transactions.

// batch runs fn in a write transaction that may be shared (with its fsync)
// by concurrent callers (groupCommit). fn may run more than once and must only
// depend on tx. An error of fn that is an expected outcome (see isOutcome) is
// handed back to the caller while the transaction still commits, so the rest
// of the batch is not re-run; fn must therefore return such errors before it
// writes anything it would not want committed. Any other error rolls back.
func (d *DB) batch(fn func(tx *bbolt.Tx) error) error {
	return batchOn(d.commits, fn)
}

// flowBatch is batch on the flow file.
func (d *DB) flowBatch(fn func(tx *bbolt.Tx) error) error {
	return batchOn(d.flowCommits, fn)
}

func batchOn(g *groupCommit, fn func(tx *bbolt.Tx) error) error {
	var outcome error
	err := g.do(func(tx *bbolt.Tx) error {
		outcome = nil
		if err := fn(tx); err != nil {
			if !isOutcome(err) {
				return err
			}
			outcome = err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return outcome
}

// callbackError marks an error returned by a caller's update function.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

func isOutcome(err error) bool {
	var ce *callbackError
	return errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrTokenReused) ||
		errors.Is(err, storage.ErrLimitReached) || errors.As(err, &ce)
}

// Encoding helpers.

func getJSON(b *bbolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bbolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func has(b *bbolt.Bucket, key string) bool { return b.Get([]byte(key)) != nil }

// join builds a composite key.
func join(parts ...string) string { return strings.Join(parts, "\x00") }

// prefixKeys returns a copy of every key in b that starts with prefix.
func prefixKeys(b *bbolt.Bucket, prefix string) [][]byte {
	var keys [][]byte
	p := []byte(prefix)
	c := b.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return keys
}

func deleteKeys(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Time helpers.

var (
	minNanoTime = time.Unix(0, 0)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// nanos maps t onto an order-preserving unsigned key.
func nanos(t time.Time) uint64 {
	switch {
	case t.Before(minNanoTime):
		return 0
	case t.After(maxNanoTime):
		return math.MaxUint64
	}
	return uint64(t.UnixNano())
}

func appendNanos(b []byte, t time.Time) []byte { return binary.BigEndian.AppendUint64(b, nanos(t)) }

// expired reports whether the deadline t (zero: none) has passed at now.
func expired(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

// Expiry index.

func expiryKey(kind byte, t time.Time, key string) []byte {
	k := appendNanos([]byte{kind}, t)
	return append(k, key...)
}

func putExpiry(tx *bbolt.Tx, kind byte, t time.Time, key string) error {
	if t.IsZero() {
		return nil
	}
	return tx.Bucket(bExpiry).Put(expiryKey(kind, t, key), emptyValue)
}

func deleteExpiry(tx *bbolt.Tx, kind byte, t time.Time, key string) error {
	if t.IsZero() {
		return nil
	}
	return tx.Bucket(bExpiry).Delete(expiryKey(kind, t, key))
}

func moveExpiry(tx *bbolt.Tx, kind byte, from, to time.Time, key string) error {
	if from.Equal(to) {
		return nil
	}
	if err := deleteExpiry(tx, kind, from, key); err != nil {
		return err
	}
	return putExpiry(tx, kind, to, key)
}

func notFound(what, key string) error {
	return fmt.Errorf("%s %q: %w", what, key, storage.ErrNotFound)
}

func conflict(what, key string) error {
	return fmt.Errorf("%s %q: %w", what, key, storage.ErrConflict)
}
