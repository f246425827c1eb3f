-- Recent failures per throttled key (storage.Throttles). Keys join their
-- parts with NUL bytes, which text cannot hold: bytea.
CREATE TABLE throttles (
	key        bytea PRIMARY KEY,
	expires_at timestamptz, -- NULL: never
	record     json NOT NULL
);
CREATE INDEX throttles_by_expiry ON throttles (expires_at) WHERE expires_at IS NOT NULL;
