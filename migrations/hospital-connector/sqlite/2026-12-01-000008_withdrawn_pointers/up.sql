-- When the custodian withdrew the pointer a record version was published under
-- (Unix milliseconds). A withdrawn pointer is never released again, whatever a
-- requester presents and whatever the index still lists.
ALTER TABLE records ADD COLUMN withdrawn_at BIGINT;
