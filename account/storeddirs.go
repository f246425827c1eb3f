package account

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/storage"
)

// Directories added on the admin page are LDAP sources kept in the store:
// their settings as JSON, the bind password sealed (never stored in clear,
// never shown again).

var directoryIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

func bindPurpose(id string) string { return "directory-bind:" + id }

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
	s.rebuildSources(opened)
	return nil
}

func (s *Service) openStored(d storage.Directory) (directory.Source, error) {
	if d.Type != "ldap" {
		return nil, fmt.Errorf("directory %q: unknown type %q", d.ID, d.Type)
	}
	var cfg ldap.Config
	if err := json.Unmarshal(d.Settings, &cfg); err != nil {
		return nil, fmt.Errorf("directory %q: settings: %w", d.ID, err)
	}
	if len(d.SealedSecret) > 0 {
		pw, err := s.sealer.Open(d.SealedSecret, bindPurpose(d.ID))
		if err != nil {
			return nil, fmt.Errorf("directory %q: bind password: %w", d.ID, err)
		}
		cfg.BindPassword = string(pw)
	}
	cfg.ID = d.ID
	return cfg.Open()
}

// StoredDirectory returns the settings of a directory added on the admin
// page, without its password.
func (s *Service) StoredDirectory(ctx context.Context, id string) (ldap.Config, error) {
	d, err := s.store.GetDirectory(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return ldap.Config{}, Errorf(NotFound, "There is no directory %q that can be edited here.", id)
	}
	if err != nil {
		return ldap.Config{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	var cfg ldap.Config
	if err := json.Unmarshal(d.Settings, &cfg); err != nil {
		return ldap.Config{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	cfg.ID = d.ID
	return cfg, nil
}

// SaveDirectory adds (create) or changes an LDAP directory from the admin
// page. An empty BindPassword on a change keeps the stored one. The
// settings are checked by opening the source before anything is stored.
func (s *Service) SaveDirectory(ctx context.Context, cfg ldap.Config, create bool) error {
	if !directoryIDPattern.MatchString(cfg.ID) {
		return FieldErrorf("id", "The ID must be 1 to 64 letters, digits, dots, dashes or underscores.")
	}
	for _, st := range s.static {
		if st.ID() == cfg.ID {
			return &Error{Code: Conflict, Field: "id", Message: "This directory comes from the configuration file and cannot be changed here."}
		}
	}
	old, err := s.store.GetDirectory(ctx, cfg.ID)
	exists := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	if create && exists {
		return &Error{Code: Conflict, Field: "id", Message: "A directory with this ID exists already."}
	}
	if !create && !exists {
		return Errorf(NotFound, "There is no directory %q that can be edited here.", cfg.ID)
	}
	sealed := old.SealedSecret
	if cfg.BindPassword != "" {
		sealed = s.sealer.Seal([]byte(cfg.BindPassword), bindPurpose(cfg.ID))
	} else if len(sealed) > 0 {
		pw, err := s.sealer.Open(sealed, bindPurpose(cfg.ID))
		if err != nil {
			return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
		}
		cfg.BindPassword = string(pw)
	}
	if _, err := cfg.Open(); err != nil {
		return &Error{Code: Invalid, Message: err.Error(), Err: err}
	}
	clean := cfg
	clean.BindPassword = ""
	settings, err := json.Marshal(clean)
	if err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	now := s.now()
	d := storage.Directory{ID: cfg.ID, Type: "ldap", Settings: settings, SealedSecret: sealed, CreatedAt: now, UpdatedAt: now}
	if exists {
		d.CreatedAt = old.CreatedAt
	}
	if err := s.store.PutDirectory(ctx, d); err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	s.log.InfoContext(ctx, "directory saved from the admin page", "directory", cfg.ID, "created", create)
	return s.LoadStoredDirectories(ctx)
}

// DeleteDirectory removes a directory added on the admin page. Its users
// keep their accounts but cannot sign in through it any more.
func (s *Service) DeleteDirectory(ctx context.Context, id string) error {
	if err := s.store.DeleteDirectory(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return Errorf(NotFound, "There is no directory %q that can be edited here.", id)
		}
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return s.LoadStoredDirectories(ctx)
}
