-- Devices in other network namespaces, and kernel names that differ from the API name.
--   netns:  a name under /run/netns or an absolute path to a namespace file; NULL for tund's own namespace.
--   ifname: the link's name in its namespace (1-15 bytes); NULL when it is the device's name.
-- With an ifname, the device's name may be up to 63 bytes: the name's CHECK changes, and SQLite changes a
-- CHECK only by rebuilding the table. The children are rebuilt with it: dropping the old devices table
-- with foreign keys on deletes its addresses and routes (ON DELETE CASCADE), and the pragma that would
-- prevent that cannot change inside the migration's transaction. Ids are kept, so nothing else moves.

CREATE TABLE devices_v5 (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
    type          TEXT    NOT NULL CHECK (type IN ('tun', 'tap')),
    mtu           INTEGER NOT NULL CHECK (mtu BETWEEN 68 AND 65535),
    up            INTEGER NOT NULL CHECK (up IN (0, 1)),
    owner_uid     INTEGER CHECK (owner_uid >= 0),
    group_gid     INTEGER CHECK (group_gid >= 0),
    queues        INTEGER NOT NULL CHECK (queues BETWEEN 1 AND 256),
    mac           TEXT,
    worker_mode   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    generation    INTEGER NOT NULL DEFAULT 1 CHECK (generation >= 1),
    drift_policy  TEXT    NOT NULL DEFAULT 'repair' CHECK (drift_policy IN ('repair', 'report')),
    tunnel_local  TEXT,
    tunnel_remote TEXT,
    offload       INTEGER NOT NULL DEFAULT 0 CHECK (offload IN (0, 1)),
    netns         TEXT    CHECK (netns IS NULL OR length(netns) BETWEEN 1 AND 4096),
    ifname        TEXT    CHECK (ifname IS NULL OR length(ifname) BETWEEN 1 AND 15),
    CHECK (ifname IS NOT NULL OR length(name) <= 15)
) STRICT;

CREATE TABLE addresses_v5 (
    device_id     INTEGER NOT NULL REFERENCES devices_v5 (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    address       TEXT    NOT NULL,
    prefix_length INTEGER NOT NULL,
    PRIMARY KEY (device_id, address)
) STRICT;

CREATE TABLE routes_v5 (
    id            INTEGER PRIMARY KEY,
    device_id     INTEGER NOT NULL REFERENCES devices_v5 (id) ON DELETE CASCADE,
    destination   TEXT    NOT NULL,
    gateway       TEXT,
    metric        INTEGER CHECK (metric BETWEEN 0 AND 4294967295),
    UNIQUE (device_id, destination, metric)
) STRICT;

INSERT INTO devices_v5 (id, name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, created_at,
                        updated_at, generation, drift_policy, tunnel_local, tunnel_remote, offload)
    SELECT id, name, type, mtu, up, owner_uid, group_gid, queues, mac, worker_mode, created_at,
           updated_at, generation, drift_policy, tunnel_local, tunnel_remote, offload FROM devices;
INSERT INTO addresses_v5 SELECT device_id, position, address, prefix_length FROM addresses;
INSERT INTO routes_v5 SELECT id, device_id, destination, gateway, metric FROM routes;

DROP TABLE routes;
DROP TABLE addresses;
DROP TABLE devices;
-- Renaming a table rewrites the foreign keys that name it, so the children follow.
ALTER TABLE devices_v5 RENAME TO devices;
ALTER TABLE addresses_v5 RENAME TO addresses;
ALTER TABLE routes_v5 RENAME TO routes;
CREATE INDEX routes_by_device ON routes (device_id);

-- Two devices may not have the same link name in the same namespace (the kernel would refuse anyway).
CREATE UNIQUE INDEX devices_link_name ON devices (coalesce(netns, ''), coalesce(ifname, name));
