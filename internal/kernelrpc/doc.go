// Package kernelrpc lets several processes share one simulated storage
// kernel: the nodes of `pvehci lab` are separate `pvehci daemon` processes,
// but DRBD replication, quorum and split brain only mean something when
// every node's LVM and DRBD live in one model (storage/sim's Network),
// so the lab supervisor keeps that model and the daemons reach it over a
// unix socket.
//
// The daemons reach it through the one interface they use to start
// programs, [run.Runner]: [NewRunner] returns a Runner whose Run sends the
// [run.Cmd] to the supervisor's [Server], which runs it on the node's own
// Runner (a storage/sim Host's) and sends back what it printed and how it
// ended. The satellite's code path is therefore the real one; only the
// Runner differs, as on a test host with storage/sim in process.
//
// Run through the socket behaves as Run on the server's Runner would: the
// same [run.Result], and on failure a [*run.Error] with the same Argv,
// ExitCode, Signal, Timeout, Stdout and Stderr, whose cause still matches
// [errors.Is] for [exec.ErrNotFound], [context.DeadlineExceeded],
// [context.Canceled], [run.ErrOutputLimit] and [run.ErrUnexpected]. What the
// socket adds fails as a *run.Error with exit code -1 too: a supervisor
// that is not running (the message names the socket), a node the
// supervisor does not know, a broken connection.
//
// The protocol is one HTTP POST per command on the unix socket, JSON both
// ways (see [Request] and [Response]); HTTP rather than a bespoke framing
// because the client's context then cancels a call for free (the server
// sees its request context end and passes that on to the Runner), and curl
// --unix-socket can poke at a running lab.
package kernelrpc
