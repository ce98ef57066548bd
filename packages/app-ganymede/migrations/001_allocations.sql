-- Gateways in the pool, and their allocations to organizations.
-- The state machine's invariants live here, not only in code.

CREATE TABLE gateways (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  url          text NOT NULL CHECK (url ~ '^https?://'),
  created_at   timestamptz NOT NULL DEFAULT now(),
  -- Set by /gateway/ready, cleared when the process goes away (stop, restart timeout, unreachable).
  ready_at     timestamptz,
  instance_id  uuid
);

CREATE TABLE allocations (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  gateway_id        uuid NOT NULL REFERENCES gateways (id),
  organization_id   uuid NOT NULL,
  state             text NOT NULL CHECK (state IN ('active', 'restarting', 'ended')),
  -- Fencing token: every process that takes the allocation over gets a higher one.
  epoch             integer NOT NULL DEFAULT 1 CHECK (epoch >= 1),
  -- The process (instance) that holds it; claimed_at is null until the first process claims it.
  holder_instance   uuid,
  claimed_at        timestamptz,
  restart_deadline  timestamptz,
  restart_reason    text CHECK (restart_reason IN ('reload', 'deploy', 'restart')),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  ended_at          timestamptz,
  ended_reason      text CHECK (ended_reason IN ('stop', 'idle', 'decommission', 'restart_timeout', 'gateway_unreachable')),
  CONSTRAINT ended_has_time_and_reason CHECK ((state = 'ended') = (ended_at IS NOT NULL AND ended_reason IS NOT NULL)),
  CONSTRAINT restarting_has_deadline CHECK ((state = 'restarting') = (restart_deadline IS NOT NULL))
);

-- At most one live allocation per gateway and per organization.
CREATE UNIQUE INDEX allocations_one_live_per_gateway ON allocations (gateway_id) WHERE state <> 'ended';
CREATE UNIQUE INDEX allocations_one_live_per_organization ON allocations (organization_id) WHERE state <> 'ended';
CREATE INDEX allocations_restart_deadline ON allocations (restart_deadline) WHERE state = 'restarting';

-- Audit: one row per transition, written in the same statement as the transition.
CREATE TABLE allocation_events (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  allocation_id    uuid NOT NULL REFERENCES allocations (id),
  gateway_id       uuid NOT NULL,
  organization_id  uuid NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('allocated', 'restart_requested', 'reclaimed', 'stopped', 'restart_timed_out', 'rolled_back')),
  reason           text,
  epoch            integer NOT NULL,
  at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX allocation_events_allocation ON allocation_events (allocation_id, id);

-- An ended allocation never changes again.
CREATE FUNCTION allocations_ended_is_terminal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state = 'ended' THEN
    RAISE EXCEPTION 'allocation % has ended and cannot change', OLD.id USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER allocations_ended_is_terminal BEFORE UPDATE ON allocations
  FOR EACH ROW EXECUTE FUNCTION allocations_ended_is_terminal();

-- Epochs only grow.
CREATE FUNCTION allocations_epoch_never_decreases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.epoch < OLD.epoch THEN
    RAISE EXCEPTION 'allocation % epoch would go from % to %', OLD.id, OLD.epoch, NEW.epoch USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER allocations_epoch_never_decreases BEFORE UPDATE OF epoch ON allocations
  FOR EACH ROW EXECUTE FUNCTION allocations_epoch_never_decreases();
