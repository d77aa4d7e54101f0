// Package ifupdown renders the host network stanzas pvehci needs for
// ifupdown2 and merges them into /etc/network/interfaces without
// disturbing anything else in it.
//
// # What is rendered
//
// [Bond] is an 802.3ad bond with bond-miimon 100, bond-xmit-hash-policy
// layer3+4 and bond-lacp-rate fast (Proxmox's advice for a bond that
// carries corosync: the slow LACP rate fails over in about 90 s, HA fences
// after about 60 s). [Bridge] is a VLAN-aware bridge (bridge-stp off,
// bridge-fd 0, bridge-vlan-aware yes, bridge-vids 2-4094) carrying the
// management address and gateway. Both are written the way Proxmox's
// network writer (PVE::Network::Interfaces) writes them, options in its
// order and indented by a tab, so the next "Apply Configuration" in the
// GUI changes nothing; bond-mode is always written because Proxmox
// assumes balance-rr without it. [IPoIB] is an IP-over-InfiniBand port in
// connected mode (pre-up echo connected > /sys/class/net/$IFACE/mode, mtu
// 65520). ifupdown2 has no IPoIB support of its own, so the port is a plain
// static interface with a pre-up command.
//
// # Which file
//
// Bond and bridge go into /etc/network/interfaces, where the Proxmox GUI
// sees them (VM NICs pick bridges from it). The IPoIB ports go into
// /etc/network/interfaces.d/pvehci ([IncludePath]), read through the line
// "source /etc/network/interfaces.d/*" that Proxmox's installer writes and
// [Merge] adds when it is missing (a source-directory line does not count:
// Debian's ifupdown2 3.0.0 does not know that keyword and takes the line
// for an option of the stanza above it). Proxmox keeps that line but never
// parses the sourced files, so it cannot trip over IPoIB ports: its
// writer dies on a port it does not recognise as a NIC (IPoIB ports must be
// named ib*) and on ib0.8001-style names it takes for VLANs with an id
// above 4094, after which no network change can be saved in the GUI.
//
// # Merging
//
// [Parse] splits a file into blocks whose lines are kept byte for byte;
// an iface stanza runs, as in ifupdown2, up to its last option line before
// the next keyword (a blank line does not end it; comment lines after the
// last option stay outside). [Merge] replaces or adds only the stanzas
// pvehci owns, by name and family, and leaves every other line as it was.
//
// # Proxmox's pending changes and lock
//
// The Proxmox GUI and API never write /etc/network/interfaces directly:
// they stage /etc/network/interfaces.new, which "Apply Configuration" (or
// the next boot, through pvenetcommit.service) moves over the real file.
// An edit made while that file exists would be lost, so [PlanNetwork] and
// [Apply] refuse and ask for the staged changes to be applied or reverted
// first. Proxmox's network API holds a flock on
// /etc/network/.pve-interfaces.lock while it edits; [Flock] takes the
// same lock. Applying the files to the running system (ifreload -a) is not
// this package's business.
package ifupdown
