package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/directory/sources"
	"github.com/keyport/keyport/storage"
)

// The management API's view and edits of directories. They go through
// the admin page's path (saveStored: the same ID rules, the secret sealed
// and kept when left out, the settings checked by building the source,
// the same audit events), and name a refused setting "settings.<key>",
// the key being config.toml's.

// DirectoryDetail is one directory as the management API shows it.
type DirectoryDetail struct {
	DirectoryStatus
	// Settings are a stored directory's settings that the admin page's
	// form edits, by config.toml key, never the secret; nil for a
	// directory from config.toml (which is not edited here).
	Settings map[string]any
	// HasSecret: a stored directory's secret (bind password, client
	// secret) is set.
	HasSecret bool
	// ETag is the version of the directory's settings and switch, for
	// PatchDirectory's ifMatch. A sync does not change it.
	ETag string
}

// DirectoryPatch is a management API edit of a directory: a JSON merge
// patch of its representation. Nil fields are left alone.
type DirectoryPatch struct {
	Disabled *bool
	// Settings map config.toml keys of the type's form to new values,
	// or to nil to empty a setting (the source's default applies); see
	// sources.Type.Patch.
	Settings map[string]any
}

var errStaleDirectory = Errorf(PreconditionFailed, "Someone else changed this directory since you loaded it. Reload and make your change again.")

// errConfigDirectory refuses edits of a directory from config.toml.
var errConfigDirectory = &Error{Code: Conflict, Field: "id", Message: "This directory comes from the configuration file and cannot be changed here."}

// DirectoryDetail returns directory id (from config.toml or stored) with
// its settings and ETag.
func (s *DirectoryService) DirectoryDetail(ctx context.Context, id string) (DirectoryDetail, error) {
	statuses := s.DirectoryStatuses(ctx)
	i := slices.IndexFunc(statuses, func(d DirectoryStatus) bool { return d.ID == id })
	if i < 0 {
		return DirectoryDetail{}, Errorf(NotFound, "There is no directory %q.", id)
	}
	d := DirectoryDetail{DirectoryStatus: statuses[i]}
	var rec storage.Directory
	if d.Stored {
		var err error
		if rec, err = s.store.GetDirectory(ctx, id); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return DirectoryDetail{}, Errorf(NotFound, "There is no directory %q.", id)
			}
			return DirectoryDetail{}, fmt.Errorf("load directory %q: %w", id, err)
		}
		t, err := sources.Lookup(rec.Type)
		if err != nil {
			return DirectoryDetail{}, fmt.Errorf("directory %q: %w", id, err)
		}
		settings, err := t.FromJSON(rec.Settings)
		if err != nil {
			return DirectoryDetail{}, fmt.Errorf("decode settings of directory %q: %w", id, err)
		}
		d.Settings, d.HasSecret = t.Values(settings), len(rec.SealedSecret) > 0
	}
	d.ETag = directoryETag(id, rec, d.Disabled)
	return d, nil
}

// directoryETag is a strong validator of what an edit of directory id
// reads: its stored record (none for one from config.toml) and its
// switch; like UserETag, a digest of their JSON.
func directoryETag(id string, rec storage.Directory, disabled bool) string {
	b, err := json.Marshal(struct {
		ID       string
		Record   storage.Directory
		Disabled bool
	}{id, rec, disabled})
	if err != nil {
		return "" // no If-Match can match an empty tag
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// CreateDirectory adds directory id of type typ ("ldap", "oidc") with the
// settings given by config.toml key (as DirectoryPatch.Settings), over the
// defaults the admin page's new form shows.
func (s *DirectoryService) CreateDirectory(ctx context.Context, typ, id string, settings map[string]any) error {
	t, err := sources.Lookup(typ)
	if err != nil {
		return FieldErrorf("provider", "The provider must be one of %s.", typeNames())
	}
	next := t.NewSettings(id)
	if err := t.Patch(next, settings); err != nil {
		return invalidSettings(err, "settings.")
	}
	if c, ok := next.(*oidcsource.Config); ok {
		c.HTTPClient = nil // Keyport's own, never stored
	}
	storedDirMu.Lock()
	defer storedDirMu.Unlock()
	return s.saveStored(ctx, typ, id, next, true, "settings.")
}

func typeNames() string {
	var names []string
	for _, t := range sources.Types() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

// PatchDirectory edits directory id as p says, if ifMatch ("" asks
// nothing) is its current ETag, else PreconditionFailed and nothing
// changes. Settings can change only on a stored directory (one from
// config.toml is Conflict); any directory can be turned off or on. Bad
// settings change nothing, the switch included.
func (s *DirectoryService) PatchDirectory(ctx context.Context, id, ifMatch string, p DirectoryPatch) error {
	storedDirMu.Lock()
	defer storedDirMu.Unlock()
	d, err := s.DirectoryDetail(ctx, id)
	if err != nil {
		return err
	}
	if ifMatch != "" && ifMatch != d.ETag {
		return errStaleDirectory
	}
	if p.Settings != nil {
		if !d.Stored {
			return errConfigDirectory
		}
		rec, err := s.store.GetDirectory(ctx, id)
		if err != nil {
			return fmt.Errorf("load directory %q: %w", id, err)
		}
		t, err := sources.Lookup(rec.Type)
		if err != nil {
			return fmt.Errorf("directory %q: %w", id, err)
		}
		settings, err := t.FromJSON(rec.Settings)
		if err != nil {
			return fmt.Errorf("decode settings of directory %q: %w", id, err)
		}
		if err := t.Patch(settings, p.Settings); err != nil {
			return invalidSettings(err, "settings.")
		}
		if err := s.saveStored(ctx, rec.Type, id, settings, false, "settings."); err != nil {
			return err
		}
	}
	if p.Disabled != nil && *p.Disabled != d.Disabled {
		return s.setDisabled(ctx, id, *p.Disabled)
	}
	return nil
}
