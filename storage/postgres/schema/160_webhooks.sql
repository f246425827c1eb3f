-- Webhooks (storage.Webhooks) and their delivery logs. A user's hooks go
-- with the user (userRecords); a hook's log goes with the hook.
CREATE TABLE webhooks (
	id            text COLLATE "C" PRIMARY KEY,
	owner_user_id text COLLATE "C" NOT NULL, -- '' for an admin's hook
	created_at    timestamptz NOT NULL,
	record        json NOT NULL
);
CREATE INDEX webhooks_by_owner ON webhooks (owner_user_id, created_at, id);

CREATE TABLE webhook_deliveries (
	webhook_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
	seq        bigint GENERATED ALWAYS AS IDENTITY,
	record     json NOT NULL,
	PRIMARY KEY (webhook_id, seq)
);
