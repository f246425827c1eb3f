-- Identity sources added on the admin page (storage.Directories).
CREATE TABLE directories (
	id            text COLLATE "C" PRIMARY KEY,
	type          text NOT NULL,
	settings      bytea,
	sealed_secret bytea,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);
