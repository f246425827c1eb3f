-- Local groups (storage.Groups). Members are not listed here: a user is a
-- member when User.Groups holds the name (user_groups, 010_users.sql).
CREATE TABLE groups (
	id       text COLLATE "C" PRIMARY KEY,
	name_key text COLLATE "C" NOT NULL UNIQUE, -- storage.Fold(name)
	record   json NOT NULL
);
