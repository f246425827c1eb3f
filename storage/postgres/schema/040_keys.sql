-- Token-signing keys (storage.Keys); the private key is sealed by the caller.
CREATE TABLE signing_keys (
	id          text COLLATE "C" PRIMARY KEY,
	algorithm   text NOT NULL,
	sealed_key  bytea,
	public_jwk  bytea,
	created_at  timestamptz NOT NULL,
	retired_at  timestamptz, -- NULL: still signs
	verify_till timestamptz  -- NULL: in the JWKS
);
