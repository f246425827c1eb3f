-- Access tokens and refresh-token families (storage.Tokens). Times the
-- store compares are Unix nanoseconds (NULL: never), as the records hold
-- them. No foreign keys to users or clients: DeleteUser and DeleteClient
-- delete their tokens themselves (userRecords, clientRecords).
CREATE TABLE refresh_families (
	id        text COLLATE "C" PRIMARY KEY,
	user_id   text COLLATE "C" NOT NULL,
	client_id text COLLATE "C" NOT NULL,
	live_hash text COLLATE "C" NOT NULL, -- the live link
	prev_hash text COLLATE "C",          -- the link live_hash replaced
	end_ns    bigint                     -- the earlier of the absolute and the live link's idle deadline
);
CREATE INDEX refresh_families_by_user ON refresh_families (user_id, client_id);
CREATE INDEX refresh_families_by_client ON refresh_families (client_id);
CREATE INDEX refresh_families_by_end ON refresh_families (end_ns) WHERE end_ns IS NOT NULL;

-- Every link of a family; a rotated one stays, so its reuse is recognised.
CREATE TABLE refresh_tokens (
	hash      text COLLATE "C" PRIMARY KEY,
	id        text COLLATE "C" NOT NULL UNIQUE,
	family_id text COLLATE "C" NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
	rotated   boolean NOT NULL,
	grace_ns  bigint, -- while the record holds a sealed value: its GraceUntil
	record    json NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_grace ON refresh_tokens (grace_ns) WHERE grace_ns IS NOT NULL;

CREATE TABLE access_tokens (
	id         text COLLATE "C" PRIMARY KEY,
	client_id  text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL, -- '' for a machine token
	family_id  text COLLATE "C" NOT NULL, -- '' for none
	expires_ns bigint,
	record     json NOT NULL
);
CREATE INDEX access_tokens_by_user ON access_tokens (user_id, client_id);
CREATE INDEX access_tokens_by_client ON access_tokens (client_id);
CREATE INDEX access_tokens_by_family ON access_tokens (family_id) WHERE family_id <> '';
CREATE INDEX access_tokens_by_expiry ON access_tokens (expires_ns) WHERE expires_ns IS NOT NULL;
