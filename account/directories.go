package account

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// DirectoryStore is the part of storage DirectoryService needs: the
// directories added on the admin page, their switches and sync reports
// (settings), and the accounts it provisions, links and blocks.
type DirectoryStore interface {
	storage.Users
	storage.Directories
	storage.Settings
}

// DirectoryService keeps the external identity sources: the password
// directories and upstream providers from config.toml and the admin page,
// sign-in through them, the accounts they provision, sync and block.
type DirectoryService struct {
	*core
	store DirectoryStore
	users *UserService // the avatars and sign-outs of accounts it changes
}

// UseDirectories sets the external sources from the configuration file:
// password directories are asked in order at password sign-in; callback
// sources get a button on the sign-in page. Call it before serving;
// LoadStoredDirectories adds the ones from the admin page.
func (s *DirectoryService) UseDirectories(sources ...directory.Source) {
	s.static = sources
	s.srcMu.Lock()
	s.storedSum = [sha256.Size]byte{} // the next LoadStoredDirectories builds again
	s.srcMu.Unlock()
	s.rebuildSources(context.Background(), nil)
}

func (s *DirectoryService) rebuildSources(ctx context.Context, stored []directory.Source) {
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	set := &sourceSet{stored: map[string]bool{}, disabled: map[string]bool{}}
	for _, src := range stored {
		set.stored[src.ID()] = true
	}
	for _, src := range append(append([]directory.Source{}, s.static...), stored...) {
		if p, ok := src.(directory.PasswordSource); ok {
			set.password = append(set.password, p)
		}
		if c, ok := src.(directory.CallbackSource); ok {
			set.callbacks = append(set.callbacks, c)
		}
		set.all = append(set.all, src)
		if raw, err := s.store.GetSetting(ctx, disabledKey(src.ID())); err == nil && string(raw) == "1" {
			set.disabled[src.ID()] = true
		}
	}
	if old := s.srcs.Swap(set); old != nil {
		for _, src := range old.all {
			if c, ok := src.(interface{ Close() }); ok && old.stored[src.ID()] {
				c.Close()
			}
		}
	}
}

// UpstreamProviders lists the sources with a sign-in button.
func (s *DirectoryService) UpstreamProviders() []directory.CallbackSource {
	return s.sourceSet().callbacks
}

// UpstreamProvider finds one by ID.
func (s *DirectoryService) UpstreamProvider(id string) directory.CallbackSource {
	for _, c := range s.sourceSet().callbacks {
		if c.ID() == id {
			return c
		}
	}
	return nil
}

// checkDirectoryPassword signs a user in through their directory (known
// is false when no local account matched the name: then every source is
// asked, and the first that knows the person creates their account).
func (s *DirectoryService) checkDirectoryPassword(ctx context.Context, c Credentials, user storage.User, known bool, attempt storage.LoginAttempt, res *throttle.Reservation) (storage.User, string, error) {
	fail := func(reason string, err error, counts bool) (storage.User, string, error) {
		attempt.UserID = user.ID
		if counts {
			s.failed(ctx, res, attempt, reason)
		} else {
			res.Cancel()
			attempt.Reason = reason
			s.record(ctx, attempt)
		}
		return storage.User{}, "", err
	}
	var sources []directory.PasswordSource
	if known {
		src := s.passwordSource(user.Source)
		if src == nil {
			s.log.WarnContext(ctx, "user's directory is not configured", "user_id", user.ID, "source", user.Source)
			return fail("directory not configured", errInvalidCredentials, true)
		}
		sources = []directory.PasswordSource{src}
	} else {
		for _, src := range s.sourceSet().password {
			if !s.DirectoryDisabled(src.ID()) {
				sources = append(sources, src)
			}
		}
	}
	if known && s.DirectoryDisabled(user.Source) {
		return fail("directory turned off", errInvalidCredentials, true)
	}
	var (
		ident directory.Identity
		src   directory.PasswordSource
		err   error
	)
	for _, candidate := range sources {
		// Trimmed as for the local lookup; case is the directory's to judge.
		ident, err = candidate.Login(ctx, strings.TrimSpace(c.Login), c.Password)
		if err == nil || !errors.Is(err, directory.ErrInvalidCredentials) {
			src = candidate
			break
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, directory.ErrInvalidCredentials):
		if known {
			// A directory that no longer knows the person also answers
			// "invalid credentials"; ask it, and end what the account has.
			if l, ok := sources[0].(directory.Lister); ok {
				if id := linkedID(user, sources[0].ID()); id != "" {
					if _, lerr := l.Lookup(ctx, id); errors.Is(lerr, directory.ErrInvalidCredentials) {
						s.blockFromDirectory(ctx, user.ID, "no longer in the directory")
						return fail("no longer in the directory", errAccountDisabled, false)
					}
				}
			}
			return fail("wrong password", errInvalidCredentials, true)
		}
		return fail("unknown account", errInvalidCredentials, true)
	case errors.Is(err, directory.ErrDisabled):
		if linked, lerr := s.store.GetUserByIdentity(ctx, src.ID(), ident.ID); lerr == nil || known {
			if lerr == nil {
				user = linked
			}
			s.blockFromDirectory(ctx, user.ID, "disabled in the directory")
		}
		return fail("disabled in the directory", errAccountDisabled, false)
	default:
		s.log.ErrorContext(ctx, "directory sign-in failed", "source", src.ID(), "err", err)
		unavailable := Errorf(Unavailable, "The directory %s cannot be reached right now. Please try again later.", src.Name())
		unavailable.Err = err
		return fail("directory unavailable", unavailable, false)
	}
	u, _, perr := s.provision(ctx, src, ident)
	if perr != nil {
		return fail("account could not be linked", perr, false)
	}
	if err := s.admit(ctx, res, attempt, u); err != nil {
		return storage.User{}, "", err
	}
	return u, "", nil
}

// provision creates or refreshes the local account of a directory user:
// a stable Keyport ID, the identity link, the fields the source owns.
// created tells which of the two it did.
func (s *DirectoryService) provision(ctx context.Context, src directory.Source, ident directory.Identity) (u storage.User, created bool, err error) {
	now := s.now()
	apply := func(u *storage.User) {
		u.Source = src.ID()
		u.Email, u.EmailVerified = ident.Email, ident.EmailVerified
		u.GivenName, u.FamilyName, u.Name = ident.GivenName, ident.FamilyName, ident.DisplayName
		u.PhoneNumber = ident.PhoneNumber
		if src.Capabilities().Groups {
			u.Groups = ident.Groups
		}
		u.UpdatedAt = now
	}
	u, err = s.store.GetUserByIdentity(ctx, src.ID(), ident.ID)
	if errors.Is(err, storage.ErrNotFound) {
		nu, cerr := s.createFromDirectory(ctx, src, ident, apply)
		var ae *Error
		switch {
		case cerr == nil:
			return nu, true, nil
		case errors.As(cerr, &ae):
			return storage.User{}, false, ae
		case !errors.Is(cerr, storage.ErrConflict):
			return storage.User{}, false, s.linkError(src, ident, cerr)
		}
		// Another sign-in or sync may have created the account just now;
		// if so, refresh that one, else the name is taken.
		if u, err = s.store.GetUserByIdentity(ctx, src.ID(), ident.ID); err != nil {
			return storage.User{}, false, s.linkError(src, ident, cerr)
		}
	}
	if err != nil {
		return storage.User{}, false, fmt.Errorf("find the account of %s user %q: %w", src.ID(), ident.ID, err)
	}
	before := u
	u, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		apply(&u)
		if u.Username != ident.Username && ident.Username != "" {
			u.Username = ident.Username // renamed in the directory
		}
		return u, nil
	})
	if err != nil {
		return storage.User{}, false, s.linkError(src, ident, err)
	}
	// The photo is stored once; re-encoded, it cannot be compared with the
	// directory's bytes later.
	if len(ident.Picture) > 0 && before.AvatarAt.IsZero() {
		s.users.setDirectoryPicture(ctx, u.ID, ident.Picture)
	}
	return u, false, nil
}

// createFromDirectory creates the local account of a directory user.
func (s *DirectoryService) createFromDirectory(ctx context.Context, src directory.Source, ident directory.Identity, apply func(*storage.User)) (storage.User, error) {
	if ident.Username == "" || ident.ID == "" {
		return storage.User{}, Errorf(Forbidden, "Your directory account has no username; ask your administrator.")
	}
	u := storage.User{ID: NewID(), Username: ident.Username, CreatedAt: s.now(),
		Identities: []storage.Identity{{Connection: src.ID(), Provider: src.Capabilities().Provider, UserID: ident.ID}}}
	apply(&u)
	if err := s.store.CreateUser(ctx, u); err != nil {
		return storage.User{}, err
	}
	s.log.InfoContext(ctx, "account created from a directory", "user_id", u.ID, "source", src.ID(), "username", u.Username)
	if len(ident.Picture) > 0 {
		s.users.setDirectoryPicture(ctx, u.ID, ident.Picture)
	}
	return u, nil
}

func (s *DirectoryService) linkError(src directory.Source, ident directory.Identity, err error) error {
	if errors.Is(err, storage.ErrConflict) {
		s.log.Warn("directory user clashes with an existing account", "source", src.ID(), "username", ident.Username, "err", err)
		return &Error{Code: Conflict, Message: "An account with your username or email already exists here. Ask your administrator to link it.", Err: err}
	}
	return fmt.Errorf("link %s user %q: %w", src.ID(), ident.ID, err)
}

// blockFromDirectory blocks an account its directory disabled or forgot,
// and ends its sessions and tokens. It logs the change, once: an account
// already blocked is refused again at each sign-in without a new line.
func (s *DirectoryService) blockFromDirectory(ctx context.Context, userID, reason string) {
	if userID == "" {
		return
	}
	wasBlocked := false
	if _, err := s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		wasBlocked = u.Blocked
		u.Blocked = true
		return u, nil
	}); err != nil {
		s.log.ErrorContext(ctx, "block directory user", "user_id", userID, "err", err)
		return
	}
	if _, _, err := s.users.signOut(ctx, userID, ""); err != nil {
		s.log.ErrorContext(ctx, "end sessions of directory user", "user_id", userID, "err", err)
	}
	if !wasBlocked {
		s.log.InfoContext(ctx, "directory user blocked", "user_id", userID, "reason", reason)
		s.audit(ctx, SystemActor, storage.AuditEvent{Type: EventUserBlocked, TargetUserID: userID, Reason: reason})
	}
}

// SyncReport counts what a directory sync did.
type SyncReport struct {
	Source                            string
	Started, Finished                 time.Time
	Created, Updated, Blocked, Failed int
	Errors                            []string
}

// syncDirectory is SyncDirectory (observer.go), unobserved.
func (s *DirectoryService) syncDirectory(ctx context.Context, sourceID string) (SyncReport, error) {
	rep := SyncReport{Source: sourceID, Started: s.now()}
	src := s.source(sourceID)
	if src == nil {
		return rep, Errorf(NotFound, "There is no directory %q.", sourceID)
	}
	lister, ok := src.(directory.Lister)
	if !ok {
		return rep, Errorf(Invalid, "The directory %q cannot list its users.", sourceID)
	}
	if s.DirectoryDisabled(sourceID) {
		return rep, Errorf(Invalid, "The directory %q is turned off.", sourceID)
	}
	idents, err := lister.Users(ctx)
	if err != nil {
		rep.Finished = s.now()
		rep.Errors = append(rep.Errors, err.Error())
		s.saveSyncReport(ctx, rep)
		s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: EventDirectorySynced, TargetID: sourceID, Reason: "directory unreachable"})
		unreachable := Errorf(Unavailable, "The directory %s cannot be reached: %v", src.Name(), err)
		unreachable.Err = err
		return rep, unreachable
	}
	seen := map[string]bool{}
	for _, ident := range idents {
		seen[ident.ID] = true
		u, created, err := s.provision(ctx, src, ident)
		if err != nil {
			rep.Failed++
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %s", ident.Username, ErrorMessage(err)))
			continue
		}
		if created {
			rep.Created++
		} else {
			rep.Updated++
		}
		if ident.Disabled && !u.Blocked {
			s.blockFromDirectory(ctx, u.ID, "disabled in the directory")
			rep.Blocked++
		}
	}
	users, err := s.store.ListUsers(ctx)
	if err != nil {
		return rep, fmt.Errorf("list users: %w", err)
	}
	for _, u := range users {
		if u.Source != sourceID || u.Blocked {
			continue
		}
		linked := slices.ContainsFunc(u.Identities, func(i storage.Identity) bool { return i.Connection == sourceID && seen[i.UserID] })
		if !linked {
			s.blockFromDirectory(ctx, u.ID, "no longer in the directory")
			rep.Blocked++
		}
	}
	rep.Finished = s.now()
	s.saveSyncReport(ctx, rep)
	s.log.InfoContext(ctx, "directory synced", "source", sourceID, "created", rep.Created, "updated", rep.Updated, "blocked", rep.Blocked, "failed", rep.Failed)
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: EventDirectorySynced, TargetID: sourceID,
		Reason: fmt.Sprintf("created %d, updated %d, blocked %d, failed %d", rep.Created, rep.Updated, rep.Blocked, rep.Failed)})
	return rep, nil
}

// DirectoryStatus is what the admin page shows for a source.
type DirectoryStatus struct {
	ID, Name, Provider string
	Disabled           bool
	Stored             bool // added on the admin page: editable there
	CanSync, CanTest   bool
	LastSync           *SyncReport
}

func syncReportKey(id string) string { return "directory-sync:" + id }
func disabledKey(id string) string   { return "directory-disabled:" + id }

// DirectoryStatuses lists every configured source with its state.
func (s *DirectoryService) DirectoryStatuses(ctx context.Context) []DirectoryStatus {
	var out []DirectoryStatus
	for _, src := range s.sourceSet().all {
		st := DirectoryStatus{ID: src.ID(), Name: src.Name(), Provider: src.Capabilities().Provider, Disabled: s.DirectoryDisabled(src.ID()), Stored: s.sourceSet().stored[src.ID()]}
		_, st.CanSync = src.(directory.Lister)
		_, st.CanTest = src.(directory.Tester)
		if raw, err := s.store.GetSetting(ctx, syncReportKey(src.ID())); err == nil {
			var rep SyncReport
			if json.Unmarshal(raw, &rep) == nil {
				st.LastSync = &rep
			}
		}
		out = append(out, st)
	}
	return out
}

// DirectoryDisabled tells whether an admin turned the source off.
func (s *DirectoryService) DirectoryDisabled(id string) bool { return s.sourceSet().disabled[id] }

// SetDirectoryDisabled turns a source off (its users cannot sign in through
// it; their accounts stay) or on again.
func (s *DirectoryService) SetDirectoryDisabled(ctx context.Context, id string, disabled bool) error {
	storedDirMu.Lock()
	defer storedDirMu.Unlock()
	return s.setDisabled(ctx, id, disabled)
}

// setDisabled is SetDirectoryDisabled with storedDirMu held.
func (s *DirectoryService) setDisabled(ctx context.Context, id string, disabled bool) error {
	if s.source(id) == nil {
		return Errorf(NotFound, "There is no directory %q.", id)
	}
	v := []byte("0")
	if disabled {
		v = []byte("1")
	}
	s.srcMu.Lock()
	defer s.srcMu.Unlock()
	if err := s.store.PutSetting(ctx, disabledKey(id), v); err != nil {
		return fmt.Errorf("store whether directory %q is on: %w", id, err)
	}
	// Same sources, new switch: swap in a copy so readers never lock.
	next := *s.sourceSet()
	next.disabled = maps.Clone(next.disabled)
	if next.disabled == nil {
		next.disabled = map[string]bool{}
	}
	next.disabled[id] = disabled
	s.srcs.Store(&next)
	s.log.InfoContext(ctx, "directory switched", "source", id, "disabled", disabled)
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: switchEvent(disabled), TargetID: id})
	return nil
}

// TestDirectory runs a source's connection test.
func (s *DirectoryService) TestDirectory(ctx context.Context, id string) (directory.TestReport, error) {
	t, ok := s.source(id).(directory.Tester)
	if !ok {
		return directory.TestReport{}, Errorf(NotFound, "There is no directory %q that can be tested.", id)
	}
	rep, err := t.Test(ctx)
	if err != nil {
		return rep, &Error{Code: Unavailable, Message: err.Error(), Err: err}
	}
	return rep, nil
}

func (s *DirectoryService) saveSyncReport(ctx context.Context, rep SyncReport) {
	raw, err := json.Marshal(rep)
	if err == nil {
		err = s.store.PutSetting(ctx, syncReportKey(rep.Source), raw)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "save sync report", "source", rep.Source, "err", err)
	}
}

// linkedID is the user's ID at the source, from their identities.
func linkedID(u storage.User, sourceID string) string {
	for _, i := range u.Identities {
		if i.Connection == sourceID {
			return i.UserID
		}
	}
	return ""
}
