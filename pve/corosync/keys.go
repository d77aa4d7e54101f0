package corosync

import (
	"regexp"
	"strings"
)

// schema describes one section kind: the keys it may hold, the
// subsections it may hold (by name, to their schema), and key prefixes
// for keys whose names are made up by the admin (qdevice heuristics'
// exec_NAME).
type schema struct {
	keys     []string
	prefixes []string
	subs     map[string]*schema
}

// corosyncSchema is the set of keys corosync 3.1 reads, collected from
// corosync.conf(5), votequorum(5), corosync-qdevice(8) and the keys the
// sources read (exec/coroparse.c, totemconfig.c, votequorum.c,
// logconfig.c, main.c, cfg.c). corosync ignores anything else without a
// word, so a typo such as knet_link_priorty silently does nothing; that is
// what [Validate] catches.
//
// It is built by a function rather than held in a package variable so that
// no code can change it for everyone.
func corosyncSchema() *schema {
	logKeys := []string{"debug", "logfile", "logfile_priority", "syslog_facility", "syslog_priority", "to_logfile", "to_stderr", "to_syslog"}
	memoryUsed := &schema{keys: []string{"poll_period", "recovery"}}
	return &schema{subs: map[string]*schema{
		"totem": {
			keys: []string{
				"block_unlisted_ips", "cancel_token_hold_on_retransmit", "clear_node_high_bit",
				"cluster_name", "config_version", "consensus", "crypto_cipher", "crypto_hash",
				"crypto_model", "downcheck", "fail_recv_const", "heartbeat_failures_allowed", "hold",
				"ip_dscp", "ip_version", "join", "key", "keyfile", "knet_compression_level",
				"knet_compression_model", "knet_compression_threshold", "knet_mtu",
				"knet_pmtud_interval", "link_mode", "max_messages", "max_network_delay", "merge",
				"miss_count_const", "netmtu", "nodeid", "secauth", "send_join",
				"seqno_unchanged_const", "threads", "token", "token_coefficient", "token_retransmit",
				"token_retransmits_before_loss_const", "token_warning", "transport", "version",
				"window_size",
			},
			subs: map[string]*schema{
				"interface": {
					keys: []string{
						"bindnetaddr", "broadcast", "knet_link_priority", "knet_ping_interval",
						"knet_ping_precision", "knet_ping_timeout", "knet_pong_count", "knet_transport",
						"linknumber", "mcastaddr", "mcastport", "ttl",
					},
					subs: map[string]*schema{"member": {keys: []string{"memberaddr"}}},
				},
			},
		},
		"logging": {
			keys: append([]string{"blackbox", "fileline", "function_name", "timestamp"}, logKeys...),
			subs: map[string]*schema{
				"logger_subsys": {keys: append([]string{"subsys"}, logKeys...)},
			},
		},
		"quorum": {
			keys: []string{
				"allow_downscale", "auto_tie_breaker", "auto_tie_breaker_node", "cancel_wait_for_all",
				"expected_votes", "expected_votes_tracking", "last_man_standing",
				"last_man_standing_window", "leaving_timeout", "provider", "two_node", "votes",
				"wait_for_all",
			},
			subs: map[string]*schema{
				"device": {
					keys: []string{"master_wins", "model", "sync_timeout", "timeout", "votes"},
					subs: map[string]*schema{
						"net": {keys: []string{
							"algorithm", "connect_timeout", "force_ip_version", "host",
							"keep_active_partition_tie_breaker", "port", "tie_breaker", "tls",
						}},
						"heuristics": {
							keys:     []string{"interval", "mode", "sync_timeout", "timeout"},
							prefixes: []string{"exec_"},
						},
					},
				},
			},
		},
		"nodelist": {
			subs: map[string]*schema{
				"node": {keys: []string{
					"name", "nodeid", "quorum_votes",
					"ring0_addr", "ring1_addr", "ring2_addr", "ring3_addr",
					"ring4_addr", "ring5_addr", "ring6_addr", "ring7_addr",
				}},
			},
		},
		"system": {keys: []string{
			"allow_knet_handle_fallback", "move_to_root_cgroup", "priority", "qb_ipc_type",
			"sched_rr", "state_dir",
		}},
		"resources": {
			keys: []string{"watchdog_device", "watchdog_timeout"},
			subs: map[string]*schema{
				"system":  {subs: map[string]*schema{"memory_used": memoryUsed}},
				"process": {subs: map[string]*schema{"memory_used": memoryUsed}},
			},
		},
		"nozzle": {keys: []string{"ipaddr", "ipprefix", "macaddr", "name"}},
		"uidgid": {keys: []string{"gid", "uid"}},
	}}
}

func (s *schema) hasKey(key string) bool {
	for _, k := range s.keys {
		if k == key {
			return true
		}
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// linkAddrKeyPattern matches the address keys Proxmox's parser knows; corosync
// itself reads only ringN_addr.
const linkAddrKeyPattern = `^(ring|link)(\d+)_addr$`

// unknownHint says what the admin probably meant for a few keys that look
// right but that corosync 3 does not read.
func unknownHint(path, key string) string {
	if m := regexp.MustCompile(linkAddrKeyPattern).FindStringSubmatch(key); m != nil {
		if m[1] == "link" {
			return "; corosync reads ring" + m[2] + "_addr (\"ring\" is the historical name of a knet link)"
		}
		return "; links are numbered 0 to 7"
	}
	switch {
	case key == "ringnumber" && strings.HasSuffix(path, "interface"):
		return "; corosync 3 reads linknumber (ringnumber is corosync 2)"
	case key == "rrp_mode":
		return "; corosync 3 replaced rrp_mode with link_mode"
	}
	return ""
}
