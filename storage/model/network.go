package model

// NetLink is one network interface as the kernel reports it: what the
// health checks of bonds and IPoIB judge, on this node or, through the
// satellites' reports, on every node.
type NetLink struct {
	Name      string `json:"name"`
	Kind      string `json:"kind,omitempty"` // bond, bridge, ipoib, device, …
	Up        bool   `json:"up,omitempty"`
	Master    string `json:"master,omitempty"`
	LinkLayer string `json:"link_layer,omitempty"` // ether, infiniband, loopback
	Addrs     int    `json:"addrs,omitempty"`      // number of addresses
}

// RDMAPort is one InfiniBand or RoCE port.
type RDMAPort struct {
	Device    string `json:"device"`
	Port      int    `json:"port"`
	State     string `json:"state"`                // ACTIVE, INIT, DOWN, …
	LinkLayer string `json:"link_layer,omitempty"` // InfiniBand or Ethernet
	NetDev    string `json:"netdev,omitempty"`
}

// NodeNetwork is a node's links and RDMA ports as its satellite last read
// them; Error says why they could not be read.
type NodeNetwork struct {
	Links     []NetLink  `json:"links,omitempty"`
	RDMAPorts []RDMAPort `json:"rdma_ports,omitempty"`
	Error     string     `json:"error,omitempty"`
}
