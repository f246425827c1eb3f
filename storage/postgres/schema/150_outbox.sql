-- Messages on their way out (storage.Outbox). due_ns is when a pending
-- message may be claimed (the later of NextAttemptAt and LeaseUntil, in
-- Unix nanoseconds); ended_at when a delivered or failed one ended, for
-- the retention sweep.
CREATE TABLE outbox (
	id       text COLLATE "C" PRIMARY KEY,
	kind     text NOT NULL,
	state    text NOT NULL,
	due_ns   bigint NOT NULL,
	ended_at timestamptz,
	record   json NOT NULL
);
CREATE INDEX outbox_due ON outbox (due_ns, id) WHERE state = 'pending';
CREATE INDEX outbox_by_state ON outbox (state, id);
CREATE INDEX outbox_ended ON outbox (ended_at) WHERE state <> 'pending';
