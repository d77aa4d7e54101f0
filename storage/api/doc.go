// Package api is pvehci's LINSTOR REST API v1: the HTTP handler that lets
// LINBIT's unmodified Proxmox plugin (linstor-proxmox), golinstor and the
// python linstor client drive pvehci as if it were a LINSTOR controller.
//
// The handler turns requests into typed ha/state commands and answers from
// the replicated state plus what the satellites observe. Everything behind
// it is reached through [Backend]: Read for the state, Apply to replicate a
// command, Observed for a resource's live DRBD state, WaitDevice to hold an
// answer until a device exists. A Backend may also implement [PoolObserver]
// (pool capacities, which placement needs) and [NodeObserver] (satellite
// connection status). Random values (DRBD secrets, UUIDs) come from an
// injected io.Reader and timestamps from an injected clock, so that the
// commands the leader proposes are the same in tests every time.
//
// # Wire format
//
// Paths, JSON field names, status codes and ApiCallRc lists follow
// LINSTOR (research linstor-proxmox.md §0 and §3, linstor-server.md §1).
// Response structs are this package's own, without omitempty on fields a
// client reads, because golinstor's structs drop zero values (a volume
// number 0, an empty volumes list that the Perl plugin dereferences).
// Requests need no Content-Type, may have an empty body where LINSTOR
// allows one (rollback), may carry numbers as strings and strings as
// numbers where real clients do (python's place_count "2", the plugin's
// Aux/pm/vmid 102), and may not carry unknown fields: a typo is a 400 that
// names the field rather than a silently ignored setting.
//
// Status codes: 200, or 201 for creates (spawn, autoplace, resource
// definition, resource, snapshot and the other POST-to-collection calls),
// also when the ApiCallRc list holds warnings or infos, as in LINSTOR.
// Failures are mapped by kind, not by LINSTOR's code ranges: 400 invalid
// request, 404 an object the path names does not exist, 409 the request
// conflicts with the state (exists, in use, not enough nodes or space,
// numbers exhausted), 413 body too large, 500 internal or replication
// failure, 501 a LINSTOR path pvehci does not implement. The list's
// ret_code carries LINSTOR's type, operation and object bits, so golinstor's
// IsApiCallError and the python client's error checks work unchanged.
//
// # What the API records and what completes it
//
// Creates are applied and then awaited: spawn, autoplace, make-available,
// resource create, toggle-disk and restore answer once WaitDevice reports
// the new devices (the Proxmox plugin opens /dev/drbd/by-res/<rd>/0 right
// after), with a warning instead of an error when a device is late, except
// for make-available, whose caller needs the device at once.
//
// Some state changes are intents that the controller's reconcilers
// complete once the satellites have acted. The API records the intent and
// then polls Read until it sees the result (or CompletionTimeout passes,
// which gives a success with a warning, as LINSTOR gives on slow
// satellites):
//
//   - delete resource / resource definition: DELETE flags (SetFlags);
//     completed by DeleteResource / DeleteResourceDefinition.
//   - delete snapshot: flag DELETE; completed by DeleteSnapshotDefinition.
//   - create snapshot: completed by the flag SUCCESSFUL (or FAILED_*,
//     which the API reports as an error).
//   - resize: the volume definition's RESIZE flag; completed when cleared.
//   - toggle-disk: DISK_ADD_REQUESTED / DISK_REMOVE_REQUESTED; completed
//     when cleared.
//   - rollback: resource property RollbackTarget=<snapshot> on every
//     replica (LINSTOR's key); completed when the property is removed.
//
// Package apitest has a Backend that completes all of these at once.
//
// # Transport and authentication
//
// [Listen] binds LINSTOR's ports, HTTP 3370 and HTTPS 3371 (TLS 1.2+),
// on the address the daemon gives, and [Server.Serve] serves the handler
// on them. A configured client CA requires a verified client certificate
// on HTTPS, as LINSTOR does for the plugin's apicrt/apikey/apica, and
// then plain HTTP serves only /health; a configured bearer token is
// required on both. /health is always open, as in LINSTOR. Refusals are
// 401 with an ApiCallRc that says what to configure (docs/api-compat.md).
// Options.Metrics mounts storage/metrics at /metrics.
//
// # Placement and tie-breakers
//
// Autoplace, spawn and make-available use storage/placement. After every
// change of a definition's replicas the API applies LINSTOR's automatic
// tie-breaker rule: a diskless TIE_BREAKER resource is added when the
// definition has an even number of diskful replicas and no diskless voter,
// and removed when that no longer holds. Deleting an ordinary diskless
// resource while a tie-breaker is needed keeps it as the tie-breaker, and
// keep_tiebreaker=true keeps an existing tie-breaker (the Proxmox plugin's
// deactivate path); without it, deleting a tie-breaker turns the automatic
// tie-breaker off for that definition, as LINSTOR does.
package api
