INSERT INTO accounts (email) VALUES ('ada@example.com'), ('grace@example.com'), ('linus@example.com');
INSERT INTO projects (account_id, name) VALUES (1, 'compiler'), (3, 'kernel');
INSERT INTO tasks (project_id, title) VALUES (1, 'parser'), (1, 'codegen'), (2, 'scheduler');
