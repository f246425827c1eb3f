-- Users (storage.Users). record is the storage.User as JSON; the columns
-- beside it are what the store finds, sorts and counts users by, kept in
-- the same statement as the record.
CREATE TABLE users (
	id         text COLLATE "C" PRIMARY KEY,
	created_at timestamptz NOT NULL,
	-- the last sign-in; the zero time (year 1) for never, so it sorts last
	last_login timestamptz NOT NULL,
	admin      boolean NOT NULL,
	blocked    boolean NOT NULL,
	totp       boolean NOT NULL, -- a confirmed TOTP secret
	source     text NOT NULL,    -- '' for a local account
	-- storage.Fold of username, email, name, given, family and nickname,
	-- and phone number, for SearchUsers' substring search
	search     text[] NOT NULL,
	record     json NOT NULL
);
CREATE INDEX users_by_created ON users (created_at DESC, id DESC);
CREATE INDEX users_by_last_login ON users (last_login DESC, id DESC);
CREATE INDEX users_acting_admins ON users (id) WHERE admin AND NOT blocked;

-- Usernames and emails in lower case share one namespace, so a login
-- names at most one user: the primary key enforces it. A user whose email
-- equals their username holds the name once.
CREATE TABLE user_logins (
	name    text COLLATE "C" PRIMARY KEY,
	user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	field   text NOT NULL -- 'username' or 'email'
);
CREATE INDEX user_logins_by_user ON user_logins (user_id);

-- Each external account (connection, its ID there) belongs to one user.
CREATE TABLE user_identities (
	connection  text NOT NULL,
	external_id text NOT NULL,
	user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (connection, external_id)
);
CREATE INDEX user_identities_by_user ON user_identities (user_id);

-- Group memberships (User.Groups), by storage.Fold of the name.
CREATE TABLE user_groups (
	user_id text COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name    text COLLATE "C" NOT NULL,
	PRIMARY KEY (user_id, name)
);
CREATE INDEX user_groups_by_name ON user_groups (name, user_id);

-- Names (lower case, as user_logins) of deleted users, unavailable until
-- their reservation ends (storage.Users.DeleteUser).
CREATE TABLE reserved_names (
	name    text COLLATE "C" PRIMARY KEY,
	user_id text NOT NULL,
	until   timestamptz NOT NULL
);
CREATE INDEX reserved_names_by_until ON reserved_names (until);
