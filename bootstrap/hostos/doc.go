// Package hostos is the real host behind bootstrap's interfaces: the
// kernel's network interfaces over netlink ([Netlink], a
// [bootstrap.Network]), the RDMA ports in sysfs ([Sysfs], a
// [bootstrap.RDMA]) and systemd over D-Bus ([DBusSystemd], a
// [bootstrap.Systemd]).
//
// Bootstrap's steps only see those narrow interfaces so that the lab can
// run them against simulated hosts (bootstrap/simhost); this package is
// what `pvehci bootstrap` wires in on a Proxmox node. It reads the host and
// asks systemd to act; it never changes the network, which Proxmox owns
// through /etc/network/interfaces.
package hostos
