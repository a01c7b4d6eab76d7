-- Runs once, when the data directory is initialised (docker-entrypoint-initdb.d).
CREATE TABLE notes (
    id serial PRIMARY KEY,
    title text NOT NULL,
    body text NOT NULL DEFAULT '',
    created timestamptz NOT NULL DEFAULT now()
);

INSERT INTO notes (title, body) VALUES
    ('Welcome', 'This row was inserted by db/01-schema.sql on the first start.'),
    ('Rootless', 'PostgreSQL, Python and Node, each in its own PRoot root filesystem.');
