package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/keyport/keyport/storage"
)

// AuditStore is the part of storage the audit log's readers need: the log,
// and the users, to check that a person reading it is an administrator.
type AuditStore interface {
	storage.Audit
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// AuditService reads the audit log for administrators: a page at a time
// (List) or all of a query as JSON Lines (Export). Writing is core.audit's.
type AuditService struct {
	*core
	store AuditStore
}

// Bounds of an audit query: what a caller can send is checked before the
// store sees it.
const (
	maxAuditTypes  = 50
	maxAuditCursor = 512
)

// auditTypePattern is the shape of an event type: dotted lower-case words.
var auditTypePattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)

// List returns a page of the events q selects, newest first, and the
// cursor of the next page ("" at the end). Bad input is Invalid naming
// the field (limit, from, type, actor, target_user, cursor).
func (s *AuditService) List(ctx context.Context, actor Actor, q storage.AuditQuery) ([]storage.AuditEvent, string, error) {
	if err := s.mayRead(ctx, actor); err != nil {
		return nil, "", err
	}
	if err := checkAuditQuery(q); err != nil {
		return nil, "", err
	}
	events, next, err := s.store.ListAudit(ctx, q)
	if errors.Is(err, storage.ErrInvalid) {
		return nil, "", &Error{Code: Invalid, Field: "cursor", Message: "The cursor is not valid for this query. Start again from the first page.", Err: err}
	}
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	if events == nil {
		events = []storage.AuditEvent{}
	}
	return events, next, nil
}

// Export writes every event q selects (from q.Cursor on, if set) to w as
// JSON Lines, newest first, and returns how many it wrote. It pages
// through the store (q.Limit is the page size), so its memory does not
// grow with the log. A failure part-way returns the count written so far.
func (s *AuditService) Export(ctx context.Context, actor Actor, q storage.AuditQuery, w io.Writer) (int, error) {
	if q.Limit <= 0 {
		q.Limit = storage.MaxAuditLimit
	}
	enc := json.NewEncoder(w) // one value per line: JSON Lines
	n := 0
	for {
		page, next, err := s.List(ctx, actor, q)
		if err != nil {
			return n, err
		}
		for _, e := range page {
			if err := enc.Encode(e); err != nil {
				return n, fmt.Errorf("write audit export: %w", err)
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		q.Cursor = next
	}
}

// mayRead lets administrators, apps (whose keyport:admin scope the API
// checks), the command line and Keyport itself read the log; a person
// must be an active administrator.
func (s *AuditService) mayRead(ctx context.Context, a Actor) error {
	switch a.Kind {
	case ActorClient, ActorCLI, ActorSystem:
		return nil
	case ActorUser:
		u, err := s.store.GetUser(ctx, a.UserID)
		if errors.Is(err, storage.ErrNotFound) {
			return errAuditNotAdmin
		}
		if err != nil {
			return fmt.Errorf("load user %q: %w", a.UserID, err)
		}
		if !u.Admin || CheckActive(u) != nil {
			return errAuditNotAdmin
		}
		return nil
	}
	return errAuditNotAdmin
}

var errAuditNotAdmin = Errorf(Forbidden, "Only administrators may read the audit log.")

// checkAuditQuery refuses what the store would not take, or takes only
// to find nothing, with the field at fault.
func checkAuditQuery(q storage.AuditQuery) error {
	switch {
	case q.Limit < 0 || q.Limit > storage.MaxAuditLimit:
		return FieldErrorf("limit", "The page size must be between 1 and %d.", storage.MaxAuditLimit)
	case !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To):
		return FieldErrorf("from", "The start of the time range must be before its end.")
	case len(q.Types) > maxAuditTypes:
		return FieldErrorf("type", "At most %d event types can be asked for at once.", maxAuditTypes)
	case !validAuditOwner(q.ActorID):
		return FieldErrorf("actor", "The actor is not a valid ID.")
	case !validAuditOwner(q.TargetUserID):
		return FieldErrorf("target_user", "The target user is not a valid ID.")
	case len(q.Cursor) > maxAuditCursor:
		return FieldErrorf("cursor", "The cursor is not valid for this query. Start again from the first page.")
	}
	for _, t := range q.Types {
		if len(t) > 64 || !auditTypePattern.MatchString(t) {
			return FieldErrorf("type", "%q is not an event type (like signin.failed).", LogName(t))
		}
	}
	return nil
}

func validAuditOwner(id string) bool {
	return len(id) <= storage.MaxAuditID && !strings.ContainsRune(id, 0)
}
