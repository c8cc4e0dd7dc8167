-- Devices in other network namespaces, and kernel names that differ from the API name.
-- netns: a name under /run/netns or an absolute path to a namespace file; NULL for tund's own namespace.
-- ifname: the link's name in its namespace; NULL when it is the device's name. Two devices may not have
-- the same link name in the same namespace (the kernel would refuse the second anyway).
ALTER TABLE devices ADD COLUMN netns TEXT CHECK (netns IS NULL OR length(netns) BETWEEN 1 AND 4096);
ALTER TABLE devices ADD COLUMN ifname TEXT CHECK (ifname IS NULL OR length(ifname) BETWEEN 1 AND 15);
CREATE UNIQUE INDEX devices_link_name ON devices (coalesce(netns, ''), coalesce(ifname, name));
