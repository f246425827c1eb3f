package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
)

// openDirectories builds the configured sources. It does not connect, so a
// directory that is down does not stop Keyport.
func openDirectories(cfgs []config.Directory) ([]*ldap.Source, error) {
	var out []*ldap.Source
	for i, d := range cfgs {
		if d.Type != "ldap" {
			continue
		}
		src, err := ldap.Config{
			ID: d.ID, Name: d.Name, URL: d.URL, StartTLS: d.StartTLS, CACertFile: d.CACertFile, InsecureSkipVerify: d.InsecureSkipVerify,
			BindDN: d.BindDN, BindPassword: d.BindPassword,
			UserBaseDN: d.UserBaseDN, UserFilter: d.UserFilter, LoginAttributes: d.LoginAttributes, DisabledFilter: d.DisabledFilter,
			IDAttribute: d.IDAttribute, UsernameAttribute: d.UsernameAttribute, EmailAttribute: d.EmailAttribute,
			GivenNameAttribute: d.GivenNameAttribute, FamilyNameAttribute: d.FamilyNameAttribute, DisplayNameAttribute: d.DisplayNameAttribute,
			PhoneAttribute: d.PhoneAttribute, PictureAttribute: d.PictureAttribute,
			GroupBaseDN: d.GroupBaseDN, GroupFilter: d.GroupFilter, MemberAttribute: d.MemberAttribute, GroupNameAttr: d.GroupNameAttribute,
			PageSize: d.PageSize, Timeout: d.Timeout.Duration, HandlesSecondFactor: d.HandlesSecondFactor,
		}.Open()
		if err != nil {
			return nil, fmt.Errorf("directories[%d]: %w", i, err)
		}
		out = append(out, src)
	}
	return out, nil
}

// upstreamSources builds the upstream OIDC providers; Keyport's callback
// is issuer + /login/upstream/callback. They log outages to log and look at
// their upstream again on the clock now.
func upstreamSources(issuer string, cfgs []config.Directory, log *slog.Logger, now func() time.Time) ([]directory.Source, error) {
	var out []directory.Source
	for i, d := range cfgs {
		if d.Type != "oidc" {
			continue
		}
		src, err := oidcsource.Config{
			ID: d.ID, Name: d.Name, Issuer: d.Issuer, ClientID: d.ClientID, ClientSecret: d.ClientSecret, Scopes: d.Scopes,
			RedirectURL:   issuer + "/login/upstream/callback",
			UsernameClaim: d.UsernameClaim, EmailClaim: d.EmailClaim, GivenNameClaim: d.GivenNameClaim, FamilyNameClaim: d.FamilyNameClaim,
			NameClaim: d.NameClaim, GroupsClaim: d.GroupsClaim, ButtonLabel: d.ButtonLabel,
			LinkByVerifiedEmail: d.LinkByVerifiedEmail, CreateUsers: d.CreateUsers, HandlesSecondFactor: d.HandlesSecondFactor,
			Logger: log, Now: now,
		}.Open()
		if err != nil {
			return nil, fmt.Errorf("directories[%d]: %w", i, err)
		}
		out = append(out, src)
	}
	return out, nil
}

func allSources(ldaps []*ldap.Source, upstream []directory.Source) []directory.Source {
	out := make([]directory.Source, 0, len(ldaps)+len(upstream))
	for _, s := range ldaps {
		out = append(out, s)
	}
	return append(out, upstream...)
}

// syncDirectories imports the users of every directory in the config now
// and then every sync_interval, and those of directories added on the admin
// page hourly (and whenever an admin presses Sync there), until ctx ends.
func (m *Main) syncDirectories(ctx context.Context) {
	go every(ctx, time.Hour, false, func() {
		for _, st := range m.Accounts.DirectoryStatuses(ctx) {
			if st.Stored && st.CanSync && !st.Disabled {
				m.syncDirectory(ctx, st.ID)
			}
		}
	})
	for _, d := range m.Config.Directories {
		if d.Type == "ldap" {
			go every(ctx, d.SyncInterval.Duration, true, func() { m.syncDirectory(ctx, d.ID) })
		}
	}
}

// syncDirectory runs one scheduled sync. Accounts logs a sync that ran;
// a sync that could not run is logged here.
func (m *Main) syncDirectory(ctx context.Context, id string) {
	if _, err := m.Accounts.SyncDirectory(ctx, id); err != nil {
		m.Logger.Warn("directory sync failed", "directory", id, "err", err)
	}
}
