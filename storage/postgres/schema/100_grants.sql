-- Consents (storage.Grants), one per user and client.
CREATE TABLE grants (
	user_id      text COLLATE "C" NOT NULL,
	client_id    text COLLATE "C" NOT NULL,
	scopes       text[],
	created_at   timestamptz NOT NULL,
	updated_at   timestamptz NOT NULL,
	last_used_at timestamptz, -- NULL: no token since the consent
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX grants_by_client ON grants (client_id);
