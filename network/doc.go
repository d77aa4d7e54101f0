// Package network renders and verifies the host network pvehci needs:
// Ethernet bonds, VLAN-aware bridges and IP-over-InfiniBand stanzas for
// ifupdown2, systemd .link files that give IB ports stable names, and the
// netlink and RDMA-device checks that prove the result is live.
package network
