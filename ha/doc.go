// Package ha holds the replicated controller: cluster state kept with raft,
// leader election and the work only the leader does, membership and join
// tokens, and automatic diskful relocation after a VM migration.
package ha
