-- Registered applications (storage.Clients). What was issued to a client
-- (tokens, grants, app passwords, sign-ins) is deleted with it by
-- DeleteClient (clientRecords in clients.go): those records may name
-- clients that are not stored here (clients from the configuration file),
-- so they carry no foreign key.
CREATE TABLE clients (
	id     text COLLATE "C" PRIMARY KEY,
	record json NOT NULL
);
