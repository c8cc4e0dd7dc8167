-- Per-device offloads: the device is opened with a virtio header (IFF_VNET_HDR) and TUNSETOFFLOAD, and
-- its worker splits and merges TCP/UDP super-packets. Fixed at creation: 0 off, 1 on.
ALTER TABLE devices ADD COLUMN offload INTEGER NOT NULL DEFAULT 0 CHECK (offload IN (0, 1));
