-- Passkeys, app passwords, API tokens and trusted devices
-- (storage.Credentials). Hash and WebAuthnID are unique across all
-- credentials when set (NULL when not).
CREATE TABLE credentials (
	id          text COLLATE "C" NOT NULL,
	user_id     text COLLATE "C" NOT NULL,
	kind        text NOT NULL,
	hash        text COLLATE "C" UNIQUE,
	webauthn_id bytea UNIQUE,
	client_id   text COLLATE "C" NOT NULL, -- '' unless an app password is restricted to one app
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz, -- NULL: never
	valid_until timestamptz, -- an API token's own expiry; NULL: never
	warned      boolean NOT NULL, -- ExpiryWarnedAt is set
	record      json NOT NULL,
	PRIMARY KEY (user_id, id)
);
CREATE INDEX credentials_by_user ON credentials (user_id, kind, created_at);
CREATE INDEX credentials_by_client ON credentials (client_id) WHERE client_id <> '';
CREATE INDEX credentials_by_expiry ON credentials (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX credentials_expiring_tokens ON credentials (valid_until) WHERE kind = 'api_token' AND NOT warned;
