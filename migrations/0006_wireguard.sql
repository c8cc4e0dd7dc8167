-- The wireguard worker's configuration: its private key, listen port and peers (public keys, preshared
-- keys, endpoints, allowed IPs, keepalives), as one JSON text with keys in hex. Set exactly when
-- worker_mode is 'wireguard'. It holds secrets: the database file and its WAL are tund's alone (0600
-- in a 0700 directory).
ALTER TABLE devices ADD COLUMN wireguard TEXT CHECK (wireguard IS NULL OR json_valid(wireguard));
