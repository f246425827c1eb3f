package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// WithStaticClients overlays clients defined in the configuration file on a
// store. They are served from memory, listed with the stored ones, and refused
// for change or deletion; a stored client cannot take a static client's ID.
func WithStaticClients(s Store, clients []Client) Store {
	byID := make(map[string]Client, len(clients))
	for _, c := range clients {
		c.Static = true
		byID[c.ID] = c
	}
	return &staticClients{Store: s, byID: byID}
}

type staticClients struct {
	Store
	byID map[string]Client
}

func (s *staticClients) CreateClient(ctx context.Context, c Client) error {
	if _, ok := s.byID[c.ID]; ok {
		return fmt.Errorf("create client %q: %w", c.ID, ErrReadOnly)
	}
	return s.Store.CreateClient(ctx, c)
}

func (s *staticClients) GetClient(ctx context.Context, id string) (Client, error) {
	if c, ok := s.byID[id]; ok {
		return c, nil
	}
	return s.Store.GetClient(ctx, id)
}

func (s *staticClients) ListClients(ctx context.Context) ([]Client, error) {
	stored, err := s.Store.ListClients(ctx)
	if err != nil {
		return nil, err
	}
	all := make([]Client, 0, len(stored)+len(s.byID))
	for _, c := range s.byID {
		all = append(all, c)
	}
	for _, c := range stored {
		if _, shadowed := s.byID[c.ID]; !shadowed {
			all = append(all, c)
		}
	}
	slices.SortFunc(all, func(a, b Client) int { return strings.Compare(a.ID, b.ID) })
	return all, nil
}

func (s *staticClients) UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) (Client, error) {
	if _, ok := s.byID[id]; ok {
		return Client{}, fmt.Errorf("update client %q: %w", id, ErrReadOnly)
	}
	return s.Store.UpdateClient(ctx, id, fn)
}

func (s *staticClients) UpdateClientRevokingTokens(ctx context.Context, id string, fn func(Client) (Client, error)) (Client, int, error) {
	if _, ok := s.byID[id]; ok {
		return Client{}, 0, fmt.Errorf("update client %q: %w", id, ErrReadOnly)
	}
	return s.Store.UpdateClientRevokingTokens(ctx, id, fn)
}

func (s *staticClients) DeleteClient(ctx context.Context, id string) error {
	if _, ok := s.byID[id]; ok {
		return fmt.Errorf("delete client %q: %w", id, ErrReadOnly)
	}
	return s.Store.DeleteClient(ctx, id)
}
