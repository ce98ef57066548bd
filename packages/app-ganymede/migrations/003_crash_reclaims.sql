-- Crash reclaims counted on the allocation row itself, so concurrent takeovers cannot skip the crash-loop limit.
--
-- /gateway/ready counts the crash reclaims in the window from allocation_events with its statement's snapshot.
-- Under READ COMMITTED that snapshot misses the reclaims that committed while the statement waited for the
-- allocation's row lock; the locked row (the latest committed version) does not. Each crash reclaim bumps this
-- counter in the statement that writes its audit row, so the locked row's counter minus the snapshot row's is
-- exactly the crash reclaims the snapshot missed (all of them recent: they committed during the statement).
-- The audit rows stay the record of when each happened; the window is still counted from their times.
ALTER TABLE allocations ADD COLUMN crash_reclaims integer NOT NULL DEFAULT 0 CHECK (crash_reclaims >= 0);

-- Only differences within one statement are read, so no backfill is needed; live allocations get their count
-- anyway, so the column means the same for every allocation that can still change (ended ones are frozen by
-- allocations_ended_is_terminal and keep 0).
UPDATE allocations a SET crash_reclaims = (
  SELECT count(*) FROM allocation_events e WHERE e.allocation_id = a.id AND e.kind = 'reclaimed' AND e.reason = 'crash')
WHERE a.state <> 'ended';
