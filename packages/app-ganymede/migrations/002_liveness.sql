-- Liveness leases, crash-loop release, and the control plane's own heartbeat (failover grace).

-- A gateway process renews its lease; a lapsed lease takes it out of the pool and, past a grace, ends
-- its allocation. Null until a process renews once: older gateways never do, and are exempt.
ALTER TABLE gateways ADD COLUMN lease_expires_at timestamptz;
CREATE INDEX gateways_lease_expires_at ON gateways (lease_expires_at);

ALTER TABLE allocations DROP CONSTRAINT allocations_ended_reason_check;
ALTER TABLE allocations ADD CONSTRAINT allocations_ended_reason_check CHECK (ended_reason IN
  ('stop', 'idle', 'decommission', 'restart_timeout', 'gateway_unreachable', 'lease_expired', 'crash_loop'));

ALTER TABLE allocation_events DROP CONSTRAINT allocation_events_kind_check;
ALTER TABLE allocation_events ADD CONSTRAINT allocation_events_kind_check CHECK (kind IN
  ('allocated', 'restart_requested', 'reclaimed', 'stopped', 'restart_timed_out', 'rolled_back', 'lease_expired', 'crash_loop'));

-- One row: when a reaper last ran, and until when expiry is held back because the control plane was
-- down (gateways could not renew or reclaim while nobody answered them).
CREATE TABLE control_plane (
  id                int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
  last_reaped_at    timestamptz NOT NULL DEFAULT now(),
  expiry_held_until timestamptz NOT NULL DEFAULT now()
);
INSERT INTO control_plane DEFAULT VALUES;
