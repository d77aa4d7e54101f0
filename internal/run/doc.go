// Package run is the one way pvehci starts programs on the host (drbdadm,
// drbdsetup, pvesh, systemctl, ip, …).
//
// Code that needs a program takes a [Runner], a one-method interface. The
// daemon and the CLI pass [Exec], which uses os/exec; tests pass a [Fake],
// which answers from a script and records a transcript that reads like a
// shell session:
//
//	cd /etc/drbd.d && __DRBD_NODE__=pve1 timeout 30s drbdadm -d up r0
//	drbdsetup status --json r0
//
// Tests compare that text against a golden string, the way tailscale's router
// tests compare their fakeOS.
//
// # Errors
//
// Every failure is an [*Error]: a non-zero exit, death by a signal, a
// timeout, a cancelled context, a program that cannot be started, and output
// beyond the capture limit. Its message names the command line
// (shell-quoted), what went wrong, and the last few non-empty lines of stderr
// (of stdout when stderr is empty), for example:
//
//	drbdadm up r0: exit code 10: stderr: r0: Failure: (114) Lower device is already claimed
//
// The environment is never part of the message, so secrets belong in
// [Cmd.Env] or [Cmd.Stdin], not in the arguments (which `ps` shows anyway).
// Use [errors.As] to get the *Error, [ExitCode] for the exit code, and
// [errors.Is] with [context.DeadlineExceeded], [context.Canceled],
// [exec.ErrNotFound] or [ErrOutputLimit] for the cause.
//
// # Environment
//
// [Exec] runs a program with the caller's environment (os.Environ), then
// LC_ALL=C, then [Cmd.Env]; a later entry wins over an earlier one with the
// same key. The environment is inherited rather than minimal because the
// daemon runs under systemd, whose environment is already small and known,
// and programs need PATH and the like. LC_ALL=C is forced so that tools print
// untranslated messages and unlocalised numbers, which pvehci parses; Cmd.Env
// can override it.
package run
