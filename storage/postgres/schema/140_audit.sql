-- The audit log (storage.Audit), append-only. at_ns is the event's time in
-- Unix nanoseconds: the log is ordered and ranged at Go's resolution, not
-- timestamptz's microseconds.
CREATE TABLE audit_events (
	at_ns          bigint NOT NULL,
	id             text COLLATE "C" NOT NULL,
	type           text NOT NULL,
	actor_id       text COLLATE "C" NOT NULL, -- '' for none
	target_user_id text COLLATE "C" NOT NULL, -- '' for none
	record         json NOT NULL,
	PRIMARY KEY (at_ns, id)
);
CREATE INDEX audit_events_by_actor ON audit_events (actor_id, at_ns, id) WHERE actor_id <> '';
CREATE INDEX audit_events_by_target ON audit_events (target_user_id, at_ns, id) WHERE target_user_id <> '';
