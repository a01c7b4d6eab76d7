ALTER TABLE items ADD COLUMN stock integer NOT NULL DEFAULT 10;
UPDATE items SET stock = 0 WHERE name = 'cake';
