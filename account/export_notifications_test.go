package account

import (
	"context"

	"github.com/keyport/keyport/storage"
)

// ReactionsForTest runs the reactors on e as a browser sign-in's write
// would, for benchmarks of their cost alone.
func (s *Service) ReactionsForTest(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
	return s.core.reactions(withBrowserSignIn(ctx), e)
}
