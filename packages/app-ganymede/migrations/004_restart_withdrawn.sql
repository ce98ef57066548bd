-- A restart can be withdrawn: the process that asked for it keeps serving (its successor failed to boot), and the
-- allocation is active again at the same epoch. The audit trail records it as its own kind.
ALTER TABLE allocation_events DROP CONSTRAINT allocation_events_kind_check;
ALTER TABLE allocation_events ADD CONSTRAINT allocation_events_kind_check CHECK (kind IN
  ('allocated', 'restart_requested', 'restart_withdrawn', 'reclaimed', 'stopped', 'restart_timed_out', 'rolled_back',
   'lease_expired', 'crash_loop'));
