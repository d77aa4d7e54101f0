// Package snapshots runs the cluster's scheduled jobs: cron-driven snapshots
// with retention, DRBD online verify, and the history of every run.
package snapshots
