package account

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
)

// Actor is who performs an action that the audit log records: a signed-in
// person (the user themselves, or an admin acting on someone), an app
// holding the keyport:admin scope, the local command line, or Keyport
// itself. Every admin method takes one, so the rules can check what it
// may do (ReadOnly) and the log can say who did it.
type Actor struct {
	Kind      string // ActorUser, ActorClient, ActorCLI or ActorSystem
	UserID    string // the acting user (ActorUser)
	ClientID  string // the acting app (ActorClient)
	IP        string
	UserAgent string
	// ReadOnly: the credential may only read (a read-only API token, the
	// keyport:admin.read scope). Every method that changes something
	// refuses it with Forbidden.
	ReadOnly bool
}

// The actor kinds, as stored in storage.AuditEvent.ActorKind.
const (
	ActorUser   = "user"
	ActorClient = "client"
	ActorCLI    = "cli"
	ActorSystem = "system"
)

// The scopes an app needs for the management API, which an admin grants
// it (client_credentials tokens only: an app acting for a person never
// gets them).
const (
	ScopeAdmin     = "keyport:admin"
	ScopeAdminRead = "keyport:admin.read"
)

// IsManagementScope tells the management API's scopes (ScopeAdmin,
// ScopeAdminRead), which only an administrator grants, to an app acting
// on its own behalf, and never ride on a person's token.
func IsManagementScope(sc string) bool { return sc == ScopeAdmin || sc == ScopeAdminRead }

// SystemActor is Keyport itself (sweeps, directory syncs on a schedule).
var SystemActor = Actor{Kind: ActorSystem}

// id is the actor's ID as the audit log keeps it.
func (a Actor) id() string {
	switch a.Kind {
	case ActorUser:
		return a.UserID
	case ActorClient:
		return a.ClientID
	}
	return ""
}

// errReadOnly refuses a change to a read-only credential.
var errReadOnly = Errorf(Forbidden, "This credential may only read.")

// mayWrite refuses read-only actors.
func (a Actor) mayWrite() error {
	if a.ReadOnly {
		return errReadOnly
	}
	return nil
}

// userGetter reads a user: what mayAdminister needs of a store.
type userGetter interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// mayAdminister refuses a change to a read-only credential and to a person
// who is not an active administrator (as AdminService.authorize does), so
// the rules of the apps, the import and the export do not rely on the
// HTTP layers' own check. The command line, apps with keyport:admin and
// the system pass.
func (a Actor) mayAdminister(ctx context.Context, users userGetter) error {
	if err := a.mayWrite(); err != nil {
		return err
	}
	if a.Kind != ActorUser {
		return nil
	}
	u, err := users.GetUser(ctx, a.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return errNotAdmin
	}
	if err != nil {
		return fmt.Errorf("load acting user %q: %w", a.UserID, err)
	}
	if !u.Admin || CheckActive(u) != nil {
		return errNotAdmin
	}
	return nil
}

// audit appends one event to the audit log, filling in its ID, time and
// actor. The change it records has happened already, so a failure to
// write it is logged at ERROR (with the event's type and target, never
// its content) rather than returned: the caller cannot undo the change.
func (s *core) audit(ctx context.Context, a Actor, e storage.AuditEvent) {
	e = s.auditEvent(ctx, a, e)
	out := s.reactions(ctx, e)
	if err := s.auditLog.AppendAudit(ctx, e, out...); err != nil {
		s.log.ErrorContext(ctx, "write audit event", "type", e.Type, "target", e.TargetUserID, "err", err)
		return
	}
	s.reacted(out)
}

// auditEvent fills in e's ID, time and actor, and what the request
// context knows (account.WithRequest) where neither e nor the actor says:
// the address, the user agent and the app of the sign-in in play.
func (s *core) auditEvent(ctx context.Context, a Actor, e storage.AuditEvent) storage.AuditEvent {
	now := s.now()
	e.ID = newOrderedID(now)
	e.Time = now
	e.ActorKind = a.Kind
	e.ActorID = a.id()
	ip, userAgent := RequestFrom(ctx)
	if e.IP == "" {
		e.IP = cmp.Or(a.IP, ip)
	}
	if e.UserAgent == "" {
		e.UserAgent = cmp.Or(a.UserAgent, userAgent)
	}
	if e.ClientID == "" {
		e.ClientID = requestClient(ctx)
	}
	return e
}
