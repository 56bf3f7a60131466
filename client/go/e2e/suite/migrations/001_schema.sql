-- Accounts own projects, projects own tasks; a trigger keeps each project's task count.
CREATE TABLE accounts (
    id    bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE
);

CREATE TABLE projects (
    id         bigserial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    name       text   NOT NULL,
    task_count int    NOT NULL DEFAULT 0
);

CREATE TABLE tasks (
    id         bigserial PRIMARY KEY,
    project_id bigint  NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title      text    NOT NULL,
    done       boolean NOT NULL DEFAULT false
);

CREATE FUNCTION count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE projects SET task_count = task_count + 1 WHERE id = NEW.project_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE projects SET task_count = task_count - 1 WHERE id = OLD.project_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_changed AFTER INSERT OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION count_tasks();

-- Each test writes its name here: a row of another test's would mean a shared database.
CREATE TABLE scratch (
    test    text        NOT NULL,
    written timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE invoice_numbers START 1000;
