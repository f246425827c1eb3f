-- Authorization requests on their way through sign-in (storage.AuthRequests),
-- so a browser can start at one replica and finish at another; the code a
-- request was given; and the codes redeemed in the last minutes, kept to
-- tell a replay from a made-up code. Times the store compares are Unix
-- nanoseconds (NULL: never), as the records hold them. No foreign key to
-- clients: DeleteClient deletes its requests and redemptions itself
-- (clientRecords).
CREATE TABLE auth_requests (
	id           text COLLATE "C" PRIMARY KEY,
	client_id    text COLLATE "C" NOT NULL,
	-- For storage.PendingLimits: the address that started the request
	-- ('' unknown), the group the total evicts from (OriginGroup, else
	-- Origin), and the class: 0 no browser has opened it, 1 a person is
	-- signing in, 2 its code went out (never evicted). Evicted in that
	-- order, each oldest (created_ns, then id) first.
	origin       text COLLATE "C" NOT NULL,
	origin_group text COLLATE "C" NOT NULL,
	class        smallint NOT NULL,
	created_ns   bigint NOT NULL,
	expires_ns   bigint,
	record       json NOT NULL
);
CREATE INDEX auth_requests_by_origin ON auth_requests (origin, class, created_ns, id) WHERE origin <> '';
CREATE INDEX auth_requests_by_group ON auth_requests (origin_group, class, created_ns, id) WHERE class < 2;
CREATE INDEX auth_requests_by_client ON auth_requests (client_id);
CREATE INDEX auth_requests_by_expiry ON auth_requests (expires_ns) WHERE expires_ns IS NOT NULL;

-- A request's one code, by the hash of its value; it goes with the request.
CREATE TABLE auth_codes (
	hash            text COLLATE "C" PRIMARY KEY,
	auth_request_id text COLLATE "C" NOT NULL UNIQUE REFERENCES auth_requests (id) ON DELETE CASCADE
);

-- Redeemed codes, remembered for a while (RedeemCode): record holds the
-- request's ID, user, client and PKCE challenge and what the exchange
-- issues; replayed is set by MarkCodeReplayed.
CREATE TABLE redeemed_codes (
	hash       text COLLATE "C" PRIMARY KEY,
	client_id  text COLLATE "C" NOT NULL,
	replayed   boolean NOT NULL,
	expires_ns bigint NOT NULL,
	record     json NOT NULL
);
CREATE INDEX redeemed_codes_by_client ON redeemed_codes (client_id);
CREATE INDEX redeemed_codes_by_expiry ON redeemed_codes (expires_ns);
