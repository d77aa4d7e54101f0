// Package metrics is pvehci's Prometheus endpoint, served by the REST API
// at /metrics on the LINSTOR ports, as LINSTOR serves its own.
//
// The cluster metrics keep LINSTOR's names, label names and value
// encodings (research linstor-server.md §6; LINSTOR's PrometheusBuilder),
// so that Grafana dashboards and alerts written for a LINSTOR controller
// keep working against pvehci: linstor_info, linstor_node_state,
// linstor_node_flag, linstor_resource_definition_count,
// linstor_resource_definition_resource_count,
// linstor_volume_definition_size_bytes, linstor_resource_state,
// linstor_volume_state, linstor_volume_allocated_size_bytes,
// linstor_storage_pool_capacity_{free,total}_bytes,
// linstor_storage_pool_error_count, linstor_error_reports_count,
// linstor_scrape_requests_count and linstor_scrape_duration_seconds.
// They are computed when scraped, from Backend.Read and the observed
// state, by one prometheus.Collector; nothing runs between scrapes, and a
// scrape always shows the state at that moment.
//
// Where pvehci has nothing to count, the LINSTOR metric is still
// exported so that panels do not show "No data", and docs/monitoring
// says which: linstor_error_reports_count and
// linstor_storage_pool_error_count are 0 (pvehci writes errors to the
// journal, not as error reports). linstor_node_reconnect_attempt_count,
// linstor_resource_open, linstor_restapi_request_duration_seconds and
// linstor_apicall_duration_seconds are not exported: pvehci does not
// know the first two, and LINSTOR labels the others with its Java API
// call names, which pvehci has no equivalent of; pvehci_api_* replace
// them.
//
// pvehci's own metrics are prefixed pvehci_: build info, whether the
// state could be read, REST request counts and durations (fed by
// api.Options.ObserveRequest), relocations by state and the scheduled
// jobs' results, read from the state's run history at scrape time. The one
// that cannot be read from the state, pvehci_relocations_total, is
// RelocationResults: a counter the leader's relocation loop feeds. The Go runtime and process collectors
// export go_* and process_* under their standard names, in place of
// LINSTOR's jvm_*.
//
// Everything is registered in the Metrics' own registry, never in
// client_golang's global one, so that tests and several handlers in one
// process do not collide.
package metrics
