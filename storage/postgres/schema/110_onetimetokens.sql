-- Single-use link secrets (storage.OneTimeTokens), by the hash of the value.
-- A OnePerUser token is its user's only one of its purpose: the partial
-- unique index makes a newer one replace it (CreateOneTimeToken's upsert).
CREATE TABLE one_time_tokens (
	hash         text COLLATE "C" PRIMARY KEY,
	purpose      text NOT NULL,
	user_id      text COLLATE "C" NOT NULL DEFAULT '',
	one_per_user boolean NOT NULL DEFAULT false,
	expires_at   timestamptz, -- NULL: never
	record       json NOT NULL
);
CREATE INDEX one_time_tokens_by_expiry ON one_time_tokens (expires_at) WHERE expires_at IS NOT NULL;
CREATE UNIQUE INDEX one_time_tokens_one_per_user ON one_time_tokens (user_id, purpose) WHERE one_per_user;
