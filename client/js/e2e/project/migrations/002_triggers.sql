-- projects.task_count follows its tasks, and every task change is audited.
CREATE FUNCTION tasks_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE projects SET task_count = task_count + 1 WHERE id = NEW.project_id;
        INSERT INTO audit_log (tablename, action, row_id) VALUES ('tasks', 'insert', NEW.id);
        RETURN NEW;
    END IF;
    UPDATE projects SET task_count = task_count - 1 WHERE id = OLD.project_id;
    INSERT INTO audit_log (tablename, action, row_id) VALUES ('tasks', 'delete', OLD.id);
    RETURN OLD;
END $$;
CREATE TRIGGER tasks_changed AFTER INSERT OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_changed();
