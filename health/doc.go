// Package health is pvehci's registry of typed health checks: the answer to
// "what is wrong with this node, how bad is it, and what do I type to fix
// it". It is modelled on tailscale's health.Warnable (a stable code, a
// title, dependencies) and on linstor-gateway's check-health (every problem
// comes with a hint naming the exact command).
//
// A [Check] has a stable [Code] that scripts and alerts can match on, a
// title, the codes it depends on, and a function that turns the node's
// state into [Finding]s. A finding has a [Severity], the objects it names
// (a resource, a peer, a link, a pool), a message and a remediation hint.
//
// Checks never run commands themselves. They read the node through the
// narrow interfaces of [Sources] (corosync, the local controller API, DRBD,
// LVM), so tests feed them canned real-format output through run.Fake, and
// each source is asked at most once per [Run].
//
// Dependencies keep one fault from raising a cascade of alarms: a finding
// of a check is reported as [Skipped] when a check it depends on has a
// warning or critical finding about the same objects or a subset of them
// (a finding naming no object covers everything). An unknown dependency
// proves nothing, so it skips nothing.
//
// The worst severity of a report maps to an exit code by the Nagios plugin
// convention, so `pvehci health` drops into Nagios, Icinga or Checkmk as
// is: 0 OK, 1 warning, 2 critical, 3 unknown (see [Severity.ExitCode]).
package health
