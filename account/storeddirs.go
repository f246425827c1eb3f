package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/directory/sources"
	"github.com/keyport/keyport/storage"
)

// Directories added on the admin page are kept in the store by type (see
// directory/sources): their settings as JSON, their secret (bind password,
// client secret) sealed, never stored in clear, never shown again.

var directoryIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// BindSealPurpose is the purpose a stored directory's bind password is
// sealed for (seal.Sealer).
func BindSealPurpose(id string) string { return "directory-bind:" + id }

// LoadStoredDirectories opens the directories added on the admin page and
// puts them in force beside the configured ones. When neither they nor
// any on/off switch changed since the last load it keeps the sources in
// force: a replica reloads on every settings notice and every 30 s
// (cmd/keyport's watch), which must not reopen every directory's
// connections each time.
func (s *DirectoryService) LoadStoredDirectories(ctx context.Context) error {
	dirs, err := s.store.ListDirectories(ctx)
	if err != nil {
		return fmt.Errorf("load directories: %w", err)
	}
	sum, err := s.storedDirectoriesSum(ctx, dirs)
	if err != nil {
		return err
	}
	s.srcMu.Lock()
	same := sum == s.storedSum
	s.srcMu.Unlock()
	if same {
		return nil
	}
	var opened []directory.Source
	for _, d := range dirs {
		src, err := s.openStored(d)
		if err != nil {
			s.log.ErrorContext(ctx, "stored directory cannot be opened; skipping it", "directory", d.ID, "err", err)
			continue
		}
		opened = append(opened, src)
	}
	s.rebuildSources(ctx, opened)
	s.srcMu.Lock()
	s.storedSum = sum
	s.srcMu.Unlock()
	return nil
}

// storedDirectoriesSum digests what LoadStoredDirectories puts in force:
// the stored directories as stored, and the on/off switch of each
// directory, stored or configured.
func (s *DirectoryService) storedDirectoriesSum(ctx context.Context, dirs []storage.Directory) ([sha256.Size]byte, error) {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(dirs); err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("digest the directories: %w", err)
	}
	ids := make([]string, 0, len(dirs)+len(s.static))
	for _, d := range dirs {
		ids = append(ids, d.ID)
	}
	for _, src := range s.static {
		ids = append(ids, src.ID())
	}
	for _, id := range ids {
		raw, err := s.store.GetSetting(ctx, disabledKey(id))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return [sha256.Size]byte{}, fmt.Errorf("read the switch of directory %q: %w", id, err)
		}
		fmt.Fprintf(h, "%s=%s\n", id, raw)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

// openStored builds a stored directory through the source registry.
func (s *DirectoryService) openStored(d storage.Directory) (directory.Source, error) {
	t, err := sources.Lookup(d.Type)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", d.ID, err)
	}
	settings, err := t.FromJSON(d.Settings)
	if err != nil {
		return nil, fmt.Errorf("directory %q: settings: %w", d.ID, err)
	}
	if len(d.SealedSecret) > 0 {
		secret, err := s.sealer.Open(d.SealedSecret, BindSealPurpose(d.ID))
		if err != nil {
			return nil, fmt.Errorf("directory %q: %s: %w", d.ID, t.SecretName, err)
		}
		*settings.Secret() = string(secret)
	}
	return settings.Build(s.sourceEnv(d.ID))
}

// sourceEnv is what Keyport supplies to the stored directory id.
func (s *DirectoryService) sourceEnv(id string) directory.Env {
	return directory.Env{ID: id, CallbackURL: s.UpstreamCallbackURL(), Logger: s.log, Now: s.now}
}

// StoredDirectory returns the settings of an LDAP directory added on the
// admin page, without its password.
func (s *DirectoryService) StoredDirectory(ctx context.Context, id string) (ldap.Config, error) {
	settings, err := s.StoredSettings(ctx, "ldap", id)
	if err != nil {
		return ldap.Config{}, err
	}
	cfg := *settings.(*ldap.Config)
	cfg.ID = id
	return cfg, nil
}

// StoredSettings returns the settings of the directory id, which must have
// been added on the admin page with type typ, without its secret.
func (s *DirectoryService) StoredSettings(ctx context.Context, typ, id string) (directory.Settings, error) {
	d, err := s.store.GetDirectory(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && d.Type != typ):
		return nil, Errorf(NotFound, "There is no directory %q that can be edited here.", id)
	case err != nil:
		return nil, fmt.Errorf("load directory %q: %w", id, err)
	}
	t, err := sources.Lookup(typ)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", id, err)
	}
	settings, err := t.FromJSON(d.Settings)
	if err != nil {
		return nil, fmt.Errorf("decode settings of directory %q: %w", id, err)
	}
	return settings, nil
}

// SaveDirectory adds (create) or changes an LDAP directory from the admin
// page. An empty BindPassword on a change keeps the stored one. The
// settings are checked by opening the source before anything is stored.
func (s *DirectoryService) SaveDirectory(ctx context.Context, cfg ldap.Config, create bool) error {
	return s.SaveStoredDirectory(ctx, "ldap", cfg.ID, &cfg, create)
}

// UpstreamCallbackURL is where upstream providers send the browser back;
// register it there.
func (s *DirectoryService) UpstreamCallbackURL() string {
	return strings.TrimSuffix(s.policy().Issuer, "/") + "/login/upstream/callback"
}

// StoredUpstream returns the settings of an upstream provider added on the
// admin page, without its secret.
func (s *DirectoryService) StoredUpstream(ctx context.Context, id string) (oidcsource.Config, error) {
	settings, err := s.StoredSettings(ctx, "oidc", id)
	if err != nil {
		return oidcsource.Config{}, err
	}
	cfg := *settings.(*oidcsource.Config)
	cfg.ID = id
	return cfg, nil
}

// SaveUpstream adds or changes an upstream OpenID Connect provider from the
// admin page; an empty ClientSecret on a change keeps the stored one.
func (s *DirectoryService) SaveUpstream(ctx context.Context, cfg oidcsource.Config, create bool) error {
	cfg.HTTPClient = nil // Keyport's own, never stored
	return s.SaveStoredDirectory(ctx, "oidc", cfg.ID, &cfg, create)
}

// wrongType refuses to save settings of one type over a directory of
// another, by the type being saved.
var wrongType = map[string]string{
	"ldap": "This directory is not an LDAP directory.",
	"oidc": "This directory is not an upstream provider.",
}

// SaveStoredDirectory adds (create) or changes the directory id of type
// typ from the admin page, through the source registry: the secret is
// sealed (an empty one on a change keeps the stored one), the settings are
// checked by building the source before anything is stored, and they are
// stored without the secret.
func (s *DirectoryService) SaveStoredDirectory(ctx context.Context, typ, id string, settings directory.Settings, create bool) error {
	storedDirMu.Lock()
	defer storedDirMu.Unlock()
	return s.saveStored(ctx, typ, id, settings, create, "")
}

// storedDirMu serialises the changes to stored directories and their
// switches, so an If-Match check and the change it guards are one step.
var storedDirMu sync.Mutex

// saveStored is SaveStoredDirectory with storedDirMu held; a refused
// setting is named fieldPrefix + its config.toml key (the admin page's
// input names are the keys; the API nests them under "settings.").
func (s *DirectoryService) saveStored(ctx context.Context, typ, id string, settings directory.Settings, create bool, fieldPrefix string) error {
	t, err := sources.Lookup(typ)
	if err != nil {
		return fmt.Errorf("directory %q: %w", id, err)
	}
	old, exists, err := s.checkSave(ctx, id, create)
	if err != nil {
		return err
	}
	if exists && old.Type != typ {
		return &Error{Code: Invalid, Field: "id", Message: wrongType[typ]}
	}
	sealed, secretKept := old.SealedSecret, false
	if secret := settings.Secret(); *secret != "" {
		sealed = s.sealer.Seal([]byte(*secret), BindSealPurpose(id))
	} else if len(sealed) > 0 {
		secretKept = true
		kept, err := s.sealer.Open(sealed, BindSealPurpose(id))
		if err != nil {
			return fmt.Errorf("open the %s of directory %q: %w", t.SecretName, id, err)
		}
		*secret = string(kept)
	}
	if _, err := settings.Build(s.sourceEnv(id)); err != nil {
		return invalidSettings(err, fieldPrefix)
	}
	if secretKept {
		prev, err := t.FromJSON(old.Settings)
		if err != nil {
			return fmt.Errorf("decode settings of directory %q: %w", id, err)
		}
		if t.SecretRouteChange(prev, settings) != "" {
			return &Error{Code: Invalid, Field: fieldPrefix + t.SecretKey(), Message: errSecretRoute}
		}
	}
	raw, err := t.ToJSON(settings)
	if err != nil {
		return fmt.Errorf("encode directory settings: %w", err)
	}
	if exists && bytes.Equal(raw, old.Settings) && bytes.Equal(sealed, old.SealedSecret) {
		return nil // nothing changed: nothing to store or audit
	}
	return s.putStored(ctx, id, typ, raw, sealed, old, exists, create)
}

// errSecretRoute refuses sending a kept secret to another endpoint.
const errSecretRoute = "The server, issuer or TLS settings changed: enter the password or secret again, since the stored one goes only where it went before."

// invalidSettings is a source's refusal of its settings as an account
// error naming the field at fault: fieldPrefix + the config.toml key.
func invalidSettings(err error, fieldPrefix string) error {
	var se *directory.SettingsError
	if errors.As(err, &se) && se.Key() != "" {
		return &Error{Code: Invalid, Field: fieldPrefix + se.Key(), Message: err.Error(), Err: err}
	}
	return &Error{Code: Invalid, Message: err.Error(), Err: err}
}

// checkSave applies the rules common to saving any stored directory.
func (s *DirectoryService) checkSave(ctx context.Context, id string, create bool) (storage.Directory, bool, error) {
	if !directoryIDPattern.MatchString(id) {
		return storage.Directory{}, false, FieldErrorf("id", "The ID must be 1 to 64 letters, digits, dots, dashes or underscores.")
	}
	for _, st := range s.static {
		if st.ID() == id {
			return storage.Directory{}, false, &Error{Code: Conflict, Field: "id", Message: "This directory comes from the configuration file and cannot be changed here."}
		}
	}
	old, err := s.store.GetDirectory(ctx, id)
	exists := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return old, false, fmt.Errorf("load directory %q: %w", id, err)
	}
	if create && exists {
		return old, true, &Error{Code: Conflict, Field: "id", Message: "A directory with this ID exists already."}
	}
	if !create && !exists {
		return old, false, Errorf(NotFound, "There is no directory %q that can be edited here.", id)
	}
	return old, exists, nil
}

func (s *DirectoryService) putStored(ctx context.Context, id, typ string, raw, sealed []byte, old storage.Directory, exists, create bool) error {
	now := s.now()
	d := storage.Directory{ID: id, Type: typ, Settings: raw, SealedSecret: sealed, CreatedAt: now, UpdatedAt: now}
	if exists {
		d.CreatedAt = old.CreatedAt
	}
	if err := s.store.PutDirectory(ctx, d); err != nil {
		return fmt.Errorf("store directory %q: %w", d.ID, err)
	}
	s.log.InfoContext(ctx, "directory saved from the admin page", "directory", id, "type", typ, "created", create)
	e := storage.AuditEvent{Type: EventDirectoryUpdated, TargetID: id, Changes: settingsChanges(old, d)}
	if !exists {
		e.Type = EventDirectoryCreated
	}
	s.audit(ctx, actorIn(ctx, cliActor), e)
	return s.LoadStoredDirectories(ctx)
}

// DeleteDirectory removes a directory added on the admin page. Its users
// keep their accounts but cannot sign in through it any more.
func (s *DirectoryService) DeleteDirectory(ctx context.Context, id string) error {
	storedDirMu.Lock()
	defer storedDirMu.Unlock()
	for _, st := range s.static {
		if st.ID() == id {
			return errConfigDirectory
		}
	}
	if err := s.store.DeleteDirectory(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return Errorf(NotFound, "There is no directory %q that can be edited here.", id)
		}
		return fmt.Errorf("delete directory %q: %w", id, err)
	}
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: EventDirectoryDeleted, TargetID: id})
	return s.LoadStoredDirectories(ctx)
}
