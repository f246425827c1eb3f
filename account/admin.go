package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyport/keyport/storage"
)

// AdminStore is the part of storage AdminService needs: the users and
// everything of theirs an administrator sees or ends (credentials, links,
// sessions, tokens, consents, history), and the clients whose consents
// the detail page lists.
type AdminStore interface {
	storage.Users
	storage.Credentials
	storage.OneTimeTokens
	storage.Sessions
	storage.Tokens
	storage.Clients
	storage.Grants
	storage.LoginAttempts
	storage.Groups
}

// AdminService holds the rules for administrators acting on users: the
// console, the management API and the command line all call it, so each
// rule (read-only credentials, locked directory fields, never the last
// administrator) and each audit event lives here once.
//
// Every method takes the Actor first. A ReadOnly actor may only read; an
// actor that is a user must be an active administrator (the HTTP layers
// check this too; the rules do not rely on it). Every change writes one
// audit event "user.<action>".
type AdminService struct {
	*core
	store AdminStore
	users *UserService
	// credentials issues a system account's API tokens (adminsystem.go).
	credentials *CredentialService
	// mail mails invitations when mail is on.
	mail *MailService
	// settings keeps the runtime settings (adminsettings.go).
	settings storage.Settings

	// adminMu serialises the actions that may take away an administrator
	// (demote, block, delete), so two of them cannot each see the other
	// admin and leave none. Keyport is one process per database (the
	// CLI reaches a running server through it), so a process lock is
	// enough.
	adminMu sync.Mutex
}

// NameReservation is how long a deleted user's username and email stay
// unavailable to new accounts.
const NameReservation = 30 * 24 * time.Hour

// HistoryOnDetail is how many sign-in attempts User returns.
const HistoryOnDetail = 20

// authorize refuses an actor that may not do this: a read-only one when
// write is set, and a user who is not an active administrator.
func (s *AdminService) authorize(ctx context.Context, a Actor, write bool) error {
	if write {
		if err := a.mayWrite(); err != nil {
			return err
		}
	}
	switch a.Kind {
	case ActorCLI, ActorSystem, ActorClient:
		return nil
	case ActorUser:
		u, err := s.store.GetUser(ctx, a.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			return errNotAdmin
		}
		if err != nil {
			return fmt.Errorf("load acting user %q: %w", a.UserID, err)
		}
		if !u.Admin || u.Blocked {
			return errNotAdmin
		}
		return nil
	}
	return errNotAdmin
}

var errNotAdmin = Errorf(Forbidden, "Only administrators may do this.")

// adminCount counts the administrators who can act: admins that are not
// blocked (storage keeps them counted).
func (s *AdminService) adminCount(ctx context.Context) (int, error) {
	n, err := s.store.CountAdmins(ctx)
	if err != nil {
		return 0, fmt.Errorf("count administrators: %w", err)
	}
	return n, nil
}

// keepAnAdmin refuses an action that would leave no administrator who can
// act, when u is one of them. The caller holds adminMu.
func (s *AdminService) keepAnAdmin(ctx context.Context, u storage.User, field string) error {
	if !u.Admin || u.Blocked {
		return nil
	}
	n, err := s.adminCount(ctx)
	if err != nil {
		return err
	}
	if n <= 1 {
		return &Error{Code: Conflict, Field: field, Message: "This is the last administrator. Make someone else an administrator first."}
	}
	return nil
}

// loadUser reads the target of an admin action.
func (s *AdminService) loadUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, errNoSuchUser
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user %q: %w", id, err)
	}
	return u, nil
}

var errNoSuchUser = Errorf(NotFound, "There is no such user.")

// UserETag is a strong validator of the stored user: the first 16 bytes
// of the SHA-256 of its JSON (the form the store keeps), base64url,
// quoted as HTTP wants it. Any stored change, sign-ins included, changes
// it.
func UserETag(u storage.User) string {
	b, err := json.Marshal(u)
	if err != nil {
		// A storage.User always encodes; should that ever change, no
		// If-Match can match an empty tag.
		return ""
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// Factors is what a user has enrolled as second factors.
type Factors struct {
	TOTP              bool // an authenticator app is confirmed
	TOTPPending       bool // enrolment started, not confirmed
	Passkeys          int
	RecoveryCodesLeft int
	TrustedDevices    int
}

// UserDetail is a user as the console's detail page shows them. No
// field holds a secret or a hash of one: User has its password hash,
// TOTP secrets and recovery-code hashes removed, and the credentials
// their hashes and key material.
type UserDetail struct {
	User        storage.User
	ETag        string // of the stored user, for UpdateUser's ifMatch
	HasPassword bool   // a local password is set
	// SourceName names the directory or upstream provider the account
	// comes from ("" for a local account).
	SourceName string
	// Locked maps each field an administrator may not edit for this user
	// to the reason (the directory owns it).
	Locked  map[string]string
	Factors Factors
	// History is the newest HistoryOnDetail sign-in attempts.
	History  []storage.LoginAttempt
	Sessions []storage.Session
	// Consents are the user's grants, one per app (an app removed from
	// config.toml included: its consent is still on record; deleting an
	// app in Keyport deletes the consents to it).
	Consents       []storage.Grant
	APITokens      []storage.Credential
	AppPasswords   []storage.Credential
	Passkeys       []storage.Credential
	TrustedDevices []storage.Credential
}

// User returns the user id with what the console's detail page shows.
func (s *AdminService) User(ctx context.Context, actor Actor, id string) (UserDetail, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return UserDetail{}, err
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return UserDetail{}, err
	}
	d := UserDetail{ETag: UserETag(u), HasPassword: u.PasswordHash != "", Locked: s.lockedFields(u)}
	if u.Source != "" {
		d.SourceName = s.sourceName(u.Source)
	}
	d.Factors.TOTP, d.Factors.TOTPPending, d.Factors.RecoveryCodesLeft = HasTOTP(u), len(u.TOTPPending) > 0, len(u.RecoveryCodes)
	if d.History, err = s.store.ListLoginAttempts(ctx, id, HistoryOnDetail); err != nil {
		return UserDetail{}, fmt.Errorf("list sign-ins of %q: %w", id, err)
	}
	if d.Sessions, err = s.store.ListUserSessions(ctx, id); err != nil {
		return UserDetail{}, fmt.Errorf("list sessions of %q: %w", id, err)
	}
	if d.Consents, err = s.store.ListGrants(ctx, id); err != nil {
		return UserDetail{}, fmt.Errorf("list consents of %q: %w", id, err)
	}
	creds, err := s.store.ListCredentials(ctx, id, "")
	if err != nil {
		return UserDetail{}, fmt.Errorf("list credentials of %q: %w", id, err)
	}
	for _, c := range creds {
		c = credentialMetadata(c)
		switch c.Kind {
		case storage.KindAPIToken:
			d.APITokens = append(d.APITokens, c)
		case storage.KindAppPassword:
			d.AppPasswords = append(d.AppPasswords, c)
		case storage.KindPasskey:
			d.Passkeys = append(d.Passkeys, c)
		case storage.KindTrustedDevice:
			d.TrustedDevices = append(d.TrustedDevices, c)
		}
	}
	d.Factors.Passkeys, d.Factors.TrustedDevices = len(d.Passkeys), len(d.TrustedDevices)
	d.User = withoutSecrets(u)
	return d, nil
}

// UserRecord returns the user id without its secrets and nothing else:
// for pages and answers that need only the record (a confirmation, a
// list of sessions), not the detail User reads.
func (s *AdminService) UserRecord(ctx context.Context, actor Actor, id string) (storage.User, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return storage.User{}, err
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return storage.User{}, err
	}
	return withoutSecrets(u), nil
}

// UserSessions returns the live sessions of user id.
func (s *AdminService) UserSessions(ctx context.Context, actor Actor, id string) ([]storage.Session, error) {
	if _, err := s.UserRecord(ctx, actor, id); err != nil {
		return nil, err
	}
	sessions, err := s.store.ListUserSessions(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", id, err)
	}
	return sessions, nil
}

// withoutSecrets is u without the password hash, the TOTP secrets and
// the recovery-code hashes.
func withoutSecrets(u storage.User) storage.User {
	u.PasswordHash = ""
	u.TOTPSecret, u.TOTPPending, u.TOTPLastStep = nil, nil, 0
	u.RecoveryCodes = nil
	return u
}

// credentialMetadata is c without its secret's hash and its key material.
func credentialMetadata(c storage.Credential) storage.Credential {
	c.Hash = ""
	c.WebAuthn, c.WebAuthnID = nil, nil
	return c
}

// userEvent is the audit event of an admin action on u.
func userEvent(typ string, u storage.User, changes ...storage.AuditChange) storage.AuditEvent {
	return storage.AuditEvent{Type: typ, TargetUserID: u.ID, Changes: changes}
}

// fitAudit keeps an event within what the store accepts
// (storage.MaxAuditEventBytes): when its changes make it too large, their
// values are left out, largest first, keeping every field's name, and
// the reason says so.
func fitAudit(e storage.AuditEvent) storage.AuditEvent {
	const room = storage.MaxAuditEventBytes - 1024 // for ID, actor, user agent
	size := func() int { b, _ := json.Marshal(e); return len(b) }
	if size() <= room {
		return e
	}
	e.Changes = append([]storage.AuditChange(nil), e.Changes...)
	for size() > room {
		big := -1
		for i, c := range e.Changes {
			if c.Before == "" && c.After == "" {
				continue
			}
			if big < 0 || len(c.Before)+len(c.After) > len(e.Changes[big].Before)+len(e.Changes[big].After) {
				big = i
			}
		}
		if big < 0 {
			break
		}
		e.Changes[big].Before, e.Changes[big].After = "", ""
		e.Reason = "some values left out: too large for the audit log"
	}
	return e
}
