-- Uploaded pictures (storage.Avatars), one per user; DeleteUser deletes it.
CREATE TABLE avatars (
	user_id      text COLLATE "C" PRIMARY KEY,
	content_type text NOT NULL,
	data         bytea NOT NULL,
	updated_at   timestamptz NOT NULL
);
