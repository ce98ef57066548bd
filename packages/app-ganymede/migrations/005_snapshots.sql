-- Organization state snapshots (/gateway/data/push and /gateway/data/pull): each push of an organization's state
-- is stored as its next revision. Snapshots belong to the organization, not to the allocation that wrote them:
-- they stay after it ends, and the organization's next allocation (on any gateway) pulls them.

-- One head row per organization: its latest revision. Pushes of one organization are ordered by this row's lock.
CREATE TABLE organization_state (
  organization_id  uuid PRIMARY KEY,
  revision         bigint NOT NULL CHECK (revision >= 1),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Revisions only grow: a compare-and-set (base_revision) means something only if a revision is never reused.
CREATE FUNCTION organization_state_revision_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revision <= OLD.revision THEN
    RAISE EXCEPTION 'organization % revision would go from % to %', OLD.organization_id, OLD.revision, NEW.revision
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER organization_state_revision_grows BEFORE UPDATE ON organization_state
  FOR EACH ROW EXECUTE FUNCTION organization_state_revision_grows();

-- The snapshots. `data` is the JSON text exactly as checksummed (not jsonb: jsonb reorders keys, drops duplicates
-- and refuses \u0000, so what comes back would not match its checksum). `client_timestamp` is the platform's
-- timestamp as it was sent (a string or a number). `epoch` is null when the push named none (an older gateway).
CREATE TABLE snapshots (
  organization_id   uuid NOT NULL REFERENCES organization_state (organization_id),
  revision          bigint NOT NULL CHECK (revision >= 1),
  epoch             integer CHECK (epoch >= 1),
  allocation_id     uuid NOT NULL REFERENCES allocations (id),
  gateway_id        uuid NOT NULL,
  data              text NOT NULL,
  size              integer NOT NULL CHECK (size >= 0),
  checksum          text NOT NULL CHECK (checksum ~ '^sha256:[0-9a-f]{64}$'),
  client_timestamp  jsonb NOT NULL CHECK (jsonb_typeof(client_timestamp) IN ('string', 'number')),
  stored_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, revision),
  CONSTRAINT size_is_the_data_bytes CHECK (size = octet_length(data))
);

-- A snapshot never changes; only retention deletes it (the push statement deletes what is past the latest N).
CREATE FUNCTION snapshots_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'snapshot % of organization % cannot change', OLD.revision, OLD.organization_id
    USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER snapshots_are_immutable BEFORE UPDATE ON snapshots
  FOR EACH ROW EXECUTE FUNCTION snapshots_are_immutable();
