-- Which protocol each gateway's process speaks, as its last /gateway/ready showed: 'v2', this project's gateway
-- (instance ids, epochs, leases; told of an allocation with POST /allocated), or 'v1', the platform's gateway
-- (ready with {gateway_id}; told with GET /collab/ping, then POST /collab/start). Every gateway registered before
-- this migration said ready the v2 way: the platform's gateways could not (their ready was refused).
ALTER TABLE gateways ADD COLUMN protocol text NOT NULL DEFAULT 'v2' CHECK (protocol IN ('v1', 'v2'));
