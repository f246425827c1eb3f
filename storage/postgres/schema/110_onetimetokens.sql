-- Single-use link secrets (storage.OneTimeTokens), by the hash of the value.
CREATE TABLE one_time_tokens (
	hash       text COLLATE "C" PRIMARY KEY,
	purpose    text NOT NULL,
	expires_at timestamptz, -- NULL: never
	record     json NOT NULL
);
CREATE INDEX one_time_tokens_by_expiry ON one_time_tokens (expires_at) WHERE expires_at IS NOT NULL;
