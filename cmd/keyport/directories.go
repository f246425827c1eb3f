package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/sources"
)

// openDirectories builds the sources of config.toml's [[directories]]
// through the source registry, type by type in the registry's order (LDAP
// directories before upstream providers). env gives what Keyport supplies
// to every source; each gets its own ID. It does not connect, so a
// directory that is down does not stop Keyport.
func openDirectories(cfgs []config.Directory, env directory.Env) ([]directory.Source, error) {
	var out []directory.Source
	for _, t := range sources.Types() {
		for i, d := range cfgs {
			if d.Type != t.Name {
				continue
			}
			src, err := openDirectory(t, d, env)
			if err != nil {
				return nil, fmt.Errorf("directories[%d]: %w", i, err)
			}
			out = append(out, src)
		}
	}
	return out, nil
}

func openDirectory(t sources.Type, d config.Directory, env directory.Env) (directory.Source, error) {
	table, err := tableOf(d)
	if err != nil {
		return nil, err
	}
	settings, err := t.FromTable(table)
	if err != nil {
		return nil, err
	}
	env.ID = d.ID
	return settings.Build(env)
}

// tableOf is d as config.toml's table after Load (which has read the
// *_file secrets in): each field under its toml key, in the shape a TOML
// decoder gives it, which is what sources.Type.FromTable takes (strings,
// booleans, int64, lists as []any, durations as Go duration strings).
func tableOf(d config.Directory) (map[string]any, error) {
	table := map[string]any{}
	v := reflect.ValueOf(d)
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("toml")
		switch val := v.Field(i).Interface().(type) {
		case string, bool:
			table[key] = val
		case int:
			table[key] = int64(val)
		case config.Duration:
			table[key] = val.Duration.String()
		case []string:
			list := make([]any, len(val))
			for j, item := range val {
				list[j] = item
			}
			table[key] = list
		default:
			return nil, fmt.Errorf("directory %q: %s: no table form for %T", d.ID, key, val)
		}
	}
	return table, nil
}

// directoryEnv is what Keyport supplies to configured sources: upstream
// providers send the browser back to issuer + /login/upstream/callback,
// log outages to log and look at their upstream again on the clock now.
func directoryEnv(issuer string, log *slog.Logger, now func() time.Time) directory.Env {
	return directory.Env{CallbackURL: issuer + "/login/upstream/callback", Logger: log, Now: now}
}

// closeSources releases what sources hold open (LDAP connection pools).
func closeSources(srcs []directory.Source) {
	for _, s := range srcs {
		if c, ok := s.(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// syncDirectories imports the users of every directory in the config now
// and then every sync_interval, and those of directories added on the admin
// page hourly (and whenever an admin presses Sync there), until ctx ends.
// workers counts the goroutines, so that shutdown can wait for a sync in
// progress.
func (m *Main) syncDirectories(ctx context.Context, workers *sync.WaitGroup) {
	workers.Go(func() {
		every(ctx, time.Hour, false, func() {
			for _, st := range m.Accounts.Directories.DirectoryStatuses(ctx) {
				if st.Stored && st.CanSync && !st.Disabled {
					m.syncDirectory(ctx, st.ID)
				}
			}
		})
	})
	for _, d := range m.Config.Directories {
		if d.Type == "ldap" {
			workers.Go(func() { every(ctx, d.SyncInterval.Duration, true, func() { m.syncDirectory(ctx, d.ID) }) })
		}
	}
}

// syncDirectory runs one scheduled sync. Accounts logs a sync that ran;
// a sync that could not run is logged here.
func (m *Main) syncDirectory(ctx context.Context, id string) {
	ctx = account.WithActor(ctx, account.SystemActor) // the audit log's actor: Keyport's schedule
	if _, err := m.Accounts.Directories.SyncDirectory(ctx, id); err != nil {
		m.Logger.Warn("directory sync failed", "directory", id, "err", err)
	}
}
