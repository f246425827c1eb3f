package main

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/webhook"
)

// sectorRoots, when set, are the certificate authorities sector documents
// are checked against instead of the system's: tests serve theirs from a
// loopback https server.
var sectorRoots *x509.CertPool

// enablePairwiseSubjects makes the subject rules (their key derived from
// the sealing key, so every replica, restart and restored backup gives a
// person the same pairwise sub) and checks the sector documents of the
// pairwise apps of config.toml: one that cannot be fetched or lacks a
// redirect URI stops the start, as any wrong [[clients]] setting does
// (Keycloak likewise refuses to save a pairwise client whose sector
// document fails). Apps the admin registers or edits are checked then
// (account.ClientService.SetSectorCheck), through the same SSRF guard as
// jwks_uri fetches.
func (m *Main) enablePairwiseSubjects(guard *webhook.Guard) (*account.Subjects, error) {
	subjects, err := account.NewSubjects(m.subkey("pairwise subjects", account.SubjectKeyLen))
	if err != nil {
		return nil, err
	}
	sectors := provider.NewSectorChecker(guard, sectorRoots)
	m.Accounts.Clients.SetSectorCheck(sectors.Check)
	m.Accounts.Users.SetSubjects(subjects)
	for i, c := range m.Config.Clients {
		if c.SubjectType != account.SubjectPairwise || c.SectorIdentifierURI == "" {
			continue
		}
		if err := sectors.Check(context.Background(), c.SectorIdentifierURI, c.RedirectURIs); err != nil {
			return nil, fmt.Errorf("clients[%d] (%s).sector_identifier_uri: %w", i, c.ID, err)
		}
	}
	return subjects, nil
}
