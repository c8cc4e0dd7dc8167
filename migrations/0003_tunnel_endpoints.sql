-- The tunnel worker mode carries packets in UDP between two hosts: its local bind address and its peer,
-- as IP:PORT or [IPv6]:PORT text. Both are set exactly when worker_mode is 'tunnel'.
ALTER TABLE devices ADD COLUMN tunnel_local TEXT;
ALTER TABLE devices ADD COLUMN tunnel_remote TEXT;
