CREATE TABLE accounts (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE projects (
    id         bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name       text NOT NULL,
    task_count integer NOT NULL DEFAULT 0
);
CREATE TABLE tasks (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title      text NOT NULL,
    done       boolean NOT NULL DEFAULT false
);
CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    tablename text NOT NULL,
    action    text NOT NULL,
    row_id    bigint NOT NULL
);
-- Written by the tests themselves: every test must find it empty.
CREATE TABLE scratch (
    id     serial PRIMARY KEY,
    writer text NOT NULL,
    note   text
);
CREATE SEQUENCE invoice_numbers START 1000;
