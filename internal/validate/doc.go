// Package validate runs the real configuration checkers against files that
// pvehci renders, so tests prove that drbdadm, corosync, ifupdown2 and
// systemd accept them, not merely that they match a golden string.
//
// There is one function per tool: [DRBD] (with [DRBDHosts] and
// [DRBDAllHosts]), [Corosync] (with [CorosyncNodes] and
// [CorosyncAllNodes]), [Ifupdown2] with [Ifquery], and [SystemdVerify].
// Each takes a context and applies [DefaultTimeout] on top of it. A file the
// tool rejects gives a [*RejectedError] with the tool, the command line, the
// exit code and the tool's own complaint. A tool that is not installed gives
// a [*ToolMissingError] carrying the apt-get line, and a check that needs
// namespaces but runs without root gives a [*NeedRootError]; package
// validatetest turns those two into a skip locally and a failure in CI.
//
// Nothing here changes the host: the tools that need a fake environment run
// in fresh, anonymous network and mount namespaces (unshare -n -m
// --propagation private). Anonymous namespaces have no name to collide on
// when tests run in parallel, and the kernel frees them when the last
// process in them exits, so they cannot leak even when the test binary is
// killed; a named netns (ip netns add) would need a cleanup that SIGKILL
// skips.
//
// # Tool behaviours worked around
//
// drbdadm (drbd-utils 9.22) has no host option: it acts as the host named in
// $__DRBD_NODE__ and then prints "PRETENDING that I am" on stderr. As a
// member host, dump insists that the host's address is configured locally,
// so the wrapper drbd.conf sets global { disable-ip-verification; }; input
// files therefore must not carry their own global section (drbdadm reports
// "conflicting use of global section"). drbdadm picks its parser from the
// loaded kernel module (a host with DRBD 8.4 loaded would get the 8.4
// parser, a host without one prints "modinfo: ... not found"), so
// DRBD_DRIVER_VERSION_OVERRIDE pins a DRBD 9 kernel version: results do not
// depend on the test machine's kernel. Known noise on stderr is dropped; any
// other stderr line fails the check even when the exit code is 0.
//
// corosync -t exits 8 with "No valid name found for local host" unless one
// node's ring addresses are local, so it runs in a fresh network namespace
// with those addresses on lo (which also keeps its DNS lookups off the
// network). With secauth or crypto settings and no keyfile line it opens
// /etc/corosync/authkey and fails without it ("Could not open
// /etc/corosync/authkey", and "Could only read N bits of minimum 1024" for a
// short key), so a fresh 256-byte key is generated and the directory holding
// it is bind-mounted over /etc/corosync in a private mount namespace; the
// host's /etc/corosync is never read or written. corosync only reports
// errors found after the config is loaded if logging goes to stderr, so the
// copy it checks gets a logging block appended (to_stderr yes, to_syslog and
// to_logfile no); appending keeps the line numbers of parse errors right.
//
// ifup -s (ifupdown2 3.0.0) treats unknown keywords as errors only with
// addon_syntax_check=1, so a copy of ifupdown2.conf with that setting is
// bind-mounted over the real one, a tmpfs over /run keeps its lock and
// state away from the host's, and /sys is the empty namespace's, read-only.
// ifup -s -a only checks interfaces marked auto, so the interfaces are
// named explicitly instead (every "iface" stanza in the file). ifup -s
// rejects mtu 65520, which IPoIB connected mode needs, as out of range;
// [IfupdownOptions] can allow exactly that warning per interface. It also
// rejects "bridge-ports none" (`invalid value "none"`), which Proxmox
// writes for a bridge without ports and a real ifup accepts (without a
// bridge-ports line the stanza is not a bridge at all). That warning is not
// allowed yet: a port-less bridge needs a second, equally narrow option.
//
// systemd-analyze verify (systemd 252) exits 0 after warnings such as an
// unknown key, an unparsable Type= or time, so any stderr output is a
// failure. It resolves executables and dependencies against the running
// host, where /usr/bin/pvehci does not exist and corosync.service may not,
// so the units are verified in a throwaway tree passed as --root: the units
// under etc/systemd/system, stub units for sysinit.target, basic.target and
// shutdown.target (needed by default dependencies), and stubs only for the
// executables and external units the caller declares in [SystemdOptions].
// An ExecStart= typo or a Requires= on an undeclared unit therefore fails on
// every machine alike. Documentation=man: pages are not looked up
// (--man=no). The alternative, SYSTEMD_UNIT_PATH with
// --recursive-errors=no, still checks executables against the host and so
// cannot pass a pvehci unit on a machine without pvehci installed.
package validate
