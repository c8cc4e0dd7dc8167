-- Live changes (PATCH, addresses and routes added and removed one by one) need a version per device for
-- If-Match, a drift policy, and a record of Idempotency-Keys so a retried create is safe.

-- Bumped by every change; the device's ETag.
ALTER TABLE devices ADD COLUMN generation INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1);

-- What to do when someone else changes the device: 'repair' it or only 'report' it.
ALTER TABLE devices ADD COLUMN drift_policy TEXT NOT NULL DEFAULT 'repair' CHECK (drift_policy IN ('repair', 'report'));

-- One row per Idempotency-Key of a successful create, kept 24 hours. The fingerprint tells a retry of
-- the same request from a different request that reuses the key.
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    fingerprint TEXT NOT NULL,
    device_name TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
