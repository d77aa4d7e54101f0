package cluster

// Cluster is the cluster file. Parse fills in the cluster-wide defaults
// (bond, bridge, storage, drbd, resource_groups, schedules' keep) so that
// callers reading these fields see what bootstrap will do; per-node defaults
// are resolved by Node.
type Cluster struct {
	// Cluster is the Proxmox (corosync) cluster name and the pvehci
	// cluster name.
	Cluster        string          `yaml:"cluster"`
	Networks       Networks        `yaml:"networks"`
	Gateway        string          `yaml:"gateway"`
	Bond           Bond            `yaml:"bond"`
	Bridge         Bridge          `yaml:"bridge"`
	Storage        Storage         `yaml:"storage"`
	DRBD           DRBD            `yaml:"drbd"`
	ResourceGroups []ResourceGroup `yaml:"resource_groups"`
	Schedules      []Schedule      `yaml:"schedules"`
	Nodes          []NodeSpec      `yaml:"nodes"`
}

// Networks are the cluster's IP networks in CIDR notation.
type Networks struct {
	// Management carries the bridge addresses, corosync link 0 and the
	// REST API.
	Management string `yaml:"management"`
	// Storage is the IPoIB network: DRBD replication and corosync link 1.
	Storage string `yaml:"storage"`
}

// Bond is an Ethernet bond: the defaults at the top of the file, or a
// node's override under nodes[].bond.
type Bond struct {
	Name string `yaml:"name"`
	// Slaves are per node; at the top of the file they are an error.
	Slaves         []string `yaml:"slaves"`
	Mode           string   `yaml:"mode"`
	Miimon         int      `yaml:"miimon"`
	XmitHashPolicy string   `yaml:"xmit_hash_policy"`
	LACPRate       string   `yaml:"lacp_rate"`
	MTU            int      `yaml:"mtu"`
}

// Bridge is the VM bridge that carries each node's management address.
type Bridge struct {
	Name string `yaml:"name"`
	// VLANAware is a pointer so that an explicit false is not taken for
	// "unset" and replaced by the default true.
	VLANAware *bool  `yaml:"vlan_aware"`
	VIDs      string `yaml:"vids"`
}

// Storage names the LVM and Proxmox objects every node gets.
type Storage struct {
	VolumeGroup string `yaml:"volume_group"`
	// ThinPool is the thin pool's LV name and the pvehci storage pool
	// name.
	ThinPool string `yaml:"thin_pool"`
	// PoolPercent is the thin pool's size as a percentage of the VG.
	PoolPercent int `yaml:"pool_percent"`
	// ProxmoxStorage is the storage ID in /etc/pve/storage.cfg.
	ProxmoxStorage string `yaml:"proxmox_storage"`
}

// DRBD holds DRBD settings.
type DRBD struct {
	// Transport is auto, tcp or rdma.
	Transport string `yaml:"transport"`
}

// ResourceGroup is a pvehci resource group created at bootstrap.
type ResourceGroup struct {
	Name       string `yaml:"name"`
	PlaceCount int    `yaml:"place_count"`
}

// Schedule is a job schedule created at bootstrap.
type Schedule struct {
	Name string `yaml:"name"`
	// Kind is snapshot or verify.
	Kind          string `yaml:"kind"`
	Cron          string `yaml:"cron"`
	ResourceGroup string `yaml:"resource_group"`
	// Keep is how many snapshots a snapshot schedule keeps.
	Keep int `yaml:"keep"`
}

// NodeSpec is one node as written in the file.
type NodeSpec struct {
	Name string `yaml:"name"`
	// Management is the node's address on the bridge, with or without
	// the prefix length of networks.management.
	Management string `yaml:"management"`
	// Bond overrides the top-level bond and names the slaves; without
	// slaves the node has no bond and pvehci leaves its Ethernet side
	// alone.
	Bond  *Bond      `yaml:"bond"`
	IPoIB *IPoIBSpec `yaml:"ipoib"`
	Disks []string   `yaml:"disks"`
	// Controller is a pointer so that an explicit false can turn off the
	// default.
	Controller *bool `yaml:"controller"`
}

// IPoIBSpec is a node's IP-over-InfiniBand port as written: the port is
// named by its GUID, or by its HCA's PCI address and port number.
type IPoIBSpec struct {
	GUID     string `yaml:"guid"`
	PCI      string `yaml:"pci"`
	Port     int    `yaml:"port"`
	Name     string `yaml:"name"`
	Address  string `yaml:"address"`
	Datagram bool   `yaml:"datagram"`
	MTU      int    `yaml:"mtu"`
}
