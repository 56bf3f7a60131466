CREATE TABLE customers (
    id    bigserial PRIMARY KEY,
    name  text NOT NULL
);

CREATE TABLE orders (
    id          bigserial PRIMARY KEY,
    customer_id bigint  NOT NULL REFERENCES customers (id),
    case_number int     NOT NULL,
    total_cents bigint  NOT NULL CHECK (total_cents >= 0)
);

CREATE INDEX orders_by_customer ON orders (customer_id);

INSERT INTO customers (name) SELECT 'customer ' || n FROM generate_series(1, 50) AS n;
INSERT INTO orders (customer_id, case_number, total_cents)
    SELECT 1 + n % 50, 0, n * 100 FROM generate_series(1, 500) AS n;
