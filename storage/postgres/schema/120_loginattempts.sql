-- The sign-in history (storage.LoginAttempts): the newest 100 of each user
-- ('' for attempts that matched nobody), for 90 days.
CREATE TABLE login_attempts (
	user_id text COLLATE "C" NOT NULL,
	at      timestamptz NOT NULL,
	id      text COLLATE "C" NOT NULL,
	record  json NOT NULL,
	PRIMARY KEY (user_id, at, id)
);
CREATE INDEX login_attempts_by_time ON login_attempts (at);
