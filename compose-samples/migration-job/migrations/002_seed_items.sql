INSERT INTO items (name, price_cents) VALUES
    ('tea', 350),
    ('coffee', 420),
    ('cake', 600);
