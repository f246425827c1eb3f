package account

import (
	"context"

	"github.com/keyport/keyport/storage"
)

// The account events are the audit events: every change worth telling
// anyone about writes one. A Reactor turns an event into the outbox
// messages it causes (a notification mail, webhook calls), and those are
// committed with the event, so an event that is recorded is also
// delivered, across crashes. Reactors run on the request's path: they
// decide from memory (settings, a cached list of subscriptions) and
// render what they send, and never wait on the network.

// Reactor returns the outbox messages event e causes, or none. It must be
// quick and must not write anything itself.
type Reactor func(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage

// AddReactor registers r for every audit event from now on.
func (s *Service) AddReactor(r Reactor) {
	for {
		old := s.core.reactors.Load()
		var next []Reactor
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, r)
		if s.core.reactors.CompareAndSwap(old, &next) {
			return
		}
	}
}

// reactions collects what e causes from every reactor.
func (s *core) reactions(ctx context.Context, e storage.AuditEvent) []storage.OutboxMessage {
	rs := s.reactors.Load()
	if rs == nil {
		return nil
	}
	var out []storage.OutboxMessage
	for _, r := range *rs {
		out = append(out, r(ctx, e)...)
	}
	return out
}

// SetOutboxWake gives every producer of outbox messages (mail, reactions,
// back-channel logouts, retries) the one way to wake the worker after a
// commit, so a message does not wait for its next poll.
func (s *Service) SetOutboxWake(wake func()) {
	if wake != nil {
		s.core.outboxWake.Store(&wake)
	}
}

// wakeOutbox wakes the outbox worker after a commit that queued messages.
func (s *core) wakeOutbox() {
	if wake := s.outboxWake.Load(); wake != nil {
		(*wake)()
	}
}

// reacted wakes the outbox worker once reactions out were committed.
func (s *core) reacted(out []storage.OutboxMessage) {
	if len(out) > 0 {
		s.wakeOutbox()
	}
}
