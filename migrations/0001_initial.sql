-- Desired state of every device tund owns. The kernel holds the actual state; on start tund makes the
-- kernel match these rows. Applied once, inside a transaction, by the migration runner.

-- Facts about this database itself. 'instance' names this database in the link alias of every device it
-- owns ("tund:<instance>"), so two daemons with different databases never claim each other's devices.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;

INSERT INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(4))));

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 15),
    type          TEXT    NOT NULL CHECK (type IN ('tun', 'tap')),
    mtu           INTEGER NOT NULL CHECK (mtu BETWEEN 68 AND 65535),
    up            INTEGER NOT NULL CHECK (up IN (0, 1)),
    owner_uid     INTEGER CHECK (owner_uid >= 0),
    group_gid     INTEGER CHECK (group_gid >= 0),
    queues        INTEGER NOT NULL CHECK (queues BETWEEN 1 AND 256),
    mac           TEXT,
    worker_mode   TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
) STRICT;

-- One row per address, kept in the order the client gave them.
CREATE TABLE addresses (
    device_id     INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    address       TEXT    NOT NULL,
    prefix_length INTEGER NOT NULL,
    PRIMARY KEY (device_id, address)
) STRICT;

CREATE TABLE routes (
    id            INTEGER PRIMARY KEY,
    device_id     INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    destination   TEXT    NOT NULL,
    gateway       TEXT,
    metric        INTEGER CHECK (metric BETWEEN 0 AND 4294967295),
    UNIQUE (device_id, destination, metric)
) STRICT;

CREATE INDEX routes_by_device ON routes (device_id);
