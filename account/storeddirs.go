package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/storage"
)

// Directories added on the admin page are LDAP sources kept in the store:
// their settings as JSON, the bind password sealed (never stored in clear,
// never shown again).

var directoryIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

// BindSealPurpose is the purpose a stored directory's bind password is
// sealed for (seal.Sealer).
func BindSealPurpose(id string) string { return "directory-bind:" + id }

// LoadStoredDirectories opens the directories added on the admin page and
// puts them in force beside the configured ones.
func (s *Service) LoadStoredDirectories(ctx context.Context) error {
	dirs, err := s.store.ListDirectories(ctx)
	if err != nil {
		return fmt.Errorf("load directories: %w", err)
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
	return nil
}

func (s *Service) openStored(d storage.Directory) (directory.Source, error) {
	if d.Type == "oidc" {
		var cfg oidcsource.Config
		if err := json.Unmarshal(d.Settings, &cfg); err != nil {
			return nil, fmt.Errorf("directory %q: settings: %w", d.ID, err)
		}
		if len(d.SealedSecret) > 0 {
			secret, err := s.sealer.Open(d.SealedSecret, BindSealPurpose(d.ID))
			if err != nil {
				return nil, fmt.Errorf("directory %q: client secret: %w", d.ID, err)
			}
			cfg.ClientSecret = string(secret)
		}
		cfg.ID, cfg.RedirectURL = d.ID, s.UpstreamCallbackURL()
		cfg.Logger, cfg.Now = s.log, s.now
		return cfg.Open()
	}
	if d.Type != "ldap" {
		return nil, fmt.Errorf("directory %q: unknown type %q", d.ID, d.Type)
	}
	var cfg ldap.Config
	if err := json.Unmarshal(d.Settings, &cfg); err != nil {
		return nil, fmt.Errorf("directory %q: settings: %w", d.ID, err)
	}
	if len(d.SealedSecret) > 0 {
		pw, err := s.sealer.Open(d.SealedSecret, BindSealPurpose(d.ID))
		if err != nil {
			return nil, fmt.Errorf("directory %q: bind password: %w", d.ID, err)
		}
		cfg.BindPassword = string(pw)
	}
	cfg.ID = d.ID
	return cfg.Open()
}

// StoredDirectory returns the settings of an LDAP directory added on the
// admin page, without its password.
func (s *Service) StoredDirectory(ctx context.Context, id string) (ldap.Config, error) {
	var cfg ldap.Config
	if err := s.storedSettings(ctx, id, "ldap", &cfg); err != nil {
		return ldap.Config{}, err
	}
	cfg.ID = id
	return cfg, nil
}

// storedSettings decodes the settings of the directory id, which must have
// been added on the admin page with type typ.
func (s *Service) storedSettings(ctx context.Context, id, typ string, settings any) error {
	d, err := s.store.GetDirectory(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && d.Type != typ):
		return Errorf(NotFound, "There is no directory %q that can be edited here.", id)
	case err != nil:
		return fmt.Errorf("load directory %q: %w", id, err)
	}
	if err := json.Unmarshal(d.Settings, settings); err != nil {
		return fmt.Errorf("decode settings of directory %q: %w", id, err)
	}
	return nil
}

// SaveDirectory adds (create) or changes an LDAP directory from the admin
// page. An empty BindPassword on a change keeps the stored one. The
// settings are checked by opening the source before anything is stored.
func (s *Service) SaveDirectory(ctx context.Context, cfg ldap.Config, create bool) error {
	old, exists, err := s.checkSave(ctx, cfg.ID, create)
	if err != nil {
		return err
	}
	if exists && old.Type != "ldap" {
		return FieldErrorf("id", "This directory is not an LDAP directory.")
	}
	sealed := old.SealedSecret
	if cfg.BindPassword != "" {
		sealed = s.sealer.Seal([]byte(cfg.BindPassword), BindSealPurpose(cfg.ID))
	} else if len(sealed) > 0 {
		pw, err := s.sealer.Open(sealed, BindSealPurpose(cfg.ID))
		if err != nil {
			return fmt.Errorf("open the bind password of directory %q: %w", cfg.ID, err)
		}
		cfg.BindPassword = string(pw)
	}
	if _, err := cfg.Open(); err != nil {
		return &Error{Code: Invalid, Message: err.Error(), Err: err}
	}
	clean := cfg
	clean.BindPassword = ""
	return s.putStored(ctx, "ldap", clean, sealed, old, exists, create)
}

// UpstreamCallbackURL is where upstream providers send the browser back;
// register it there.
func (s *Service) UpstreamCallbackURL() string {
	return strings.TrimSuffix(s.policy.Issuer, "/") + "/login/upstream/callback"
}

// StoredUpstream returns the settings of an upstream provider added on the
// admin page, without its secret.
func (s *Service) StoredUpstream(ctx context.Context, id string) (oidcsource.Config, error) {
	var cfg oidcsource.Config
	if err := s.storedSettings(ctx, id, "oidc", &cfg); err != nil {
		return oidcsource.Config{}, err
	}
	cfg.ID = id
	return cfg, nil
}

// SaveUpstream adds or changes an upstream OpenID Connect provider from the
// admin page; an empty ClientSecret on a change keeps the stored one.
func (s *Service) SaveUpstream(ctx context.Context, cfg oidcsource.Config, create bool) error {
	old, exists, err := s.checkSave(ctx, cfg.ID, create)
	if err != nil {
		return err
	}
	if exists && old.Type != "oidc" {
		return FieldErrorf("id", "This directory is not an upstream provider.")
	}
	sealed := old.SealedSecret
	if cfg.ClientSecret != "" {
		sealed = s.sealer.Seal([]byte(cfg.ClientSecret), BindSealPurpose(cfg.ID))
	}
	cfg.RedirectURL = s.UpstreamCallbackURL()
	cfg.HTTPClient = nil
	if _, err := cfg.Open(); err != nil {
		return &Error{Code: Invalid, Message: err.Error(), Err: err}
	}
	clean := cfg
	clean.ClientSecret = ""
	return s.putStored(ctx, "oidc", clean, sealed, old, exists, create)
}

// checkSave applies the rules common to saving any stored directory.
func (s *Service) checkSave(ctx context.Context, id string, create bool) (storage.Directory, bool, error) {
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

func (s *Service) putStored(ctx context.Context, typ string, settings any, sealed []byte, old storage.Directory, exists, create bool) error {
	raw, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("encode directory settings: %w", err)
	}
	now := s.now()
	id := ""
	switch c := settings.(type) {
	case ldap.Config:
		id = c.ID
	case oidcsource.Config:
		id = c.ID
	}
	d := storage.Directory{ID: id, Type: typ, Settings: raw, SealedSecret: sealed, CreatedAt: now, UpdatedAt: now}
	if exists {
		d.CreatedAt = old.CreatedAt
	}
	if err := s.store.PutDirectory(ctx, d); err != nil {
		return fmt.Errorf("store directory %q: %w", d.ID, err)
	}
	s.log.InfoContext(ctx, "directory saved from the admin page", "directory", id, "type", typ, "created", create)
	return s.LoadStoredDirectories(ctx)
}

// DeleteDirectory removes a directory added on the admin page. Its users
// keep their accounts but cannot sign in through it any more.
func (s *Service) DeleteDirectory(ctx context.Context, id string) error {
	if err := s.store.DeleteDirectory(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return Errorf(NotFound, "There is no directory %q that can be edited here.", id)
		}
		return fmt.Errorf("delete directory %q: %w", id, err)
	}
	return s.LoadStoredDirectories(ctx)
}
