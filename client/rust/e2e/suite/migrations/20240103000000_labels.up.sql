-- A reversible migration, in sqlx's .up.sql/.down.sql layout.
CREATE TABLE labels (
    task_id bigint NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    label   text   NOT NULL,
    PRIMARY KEY (task_id, label)
);
INSERT INTO labels VALUES (1, 'frontend'), (2, 'backend');
