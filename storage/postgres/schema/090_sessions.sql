-- Signed-in browsers (storage.Sessions). No foreign key to users: a
-- session is written in the sign-in's transaction, and DeleteUser deletes
-- a user's sessions itself (userRecords).
CREATE TABLE sessions (
	id         text COLLATE "C" PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz, -- NULL: never
	record     json NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_by_expiry ON sessions (expires_at) WHERE expires_at IS NOT NULL;
