ALTER TABLE records DROP COLUMN withdrawn_at;
